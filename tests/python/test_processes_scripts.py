"""Whole programs in child processes: a script whose main module defines the worker
function, the README example, Ctrl-C. Main interpreter only (isolated interpreters may not
start processes): run_suite.py leaves test_processes_*.py out of the subinterpreter run."""
import os
import subprocess
import sys
import textwrap
import unittest


PROBE_SUBINTERPRETER_IMPORT = """
import sys
try:
    import _interpreters as m
    iid = m.create("isolated")
except ImportError:
    import _xxsubinterpreters as m
    iid = m.create(isolated=True)
try:
    r = m.run_string(iid, "import " + sys.argv[1])
    print("loaded" if r is None else "refused")
except Exception:
    print("refused")
"""


class ProcessLevelTest(unittest.TestCase):
    def run_script(self, source, **kw):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        return subprocess.run([sys.executable, "-c", source] if "script" not in kw else [sys.executable, kw["script"]],
                              env=env, capture_output=True, text=True, timeout=60)

    def test_functions_defined_in_the_main_script_can_be_spawned(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "main_script.py")
            with open(path, "w") as f:
                f.write(textwrap.dedent("""
                    import math, sys, xchan
                    print("top level of", __name__, file=sys.stderr)
                    def work(tx):
                        tx.send("hello from __main__.work")
                    if __name__ == "__main__":
                        tx, rx = xchan.channel()
                        xchan.spawn(work, tx).join()
                        print(rx.recv(timeout=10))
                        xchan.spawn(math.factorial, 5).join()  # refers to nothing in __main__
                """))
            r = self.run_script("", script=path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "hello from __main__.work")
        # The script ran as __main__, then as __mp_main__ in the first worker only.
        self.assertEqual(sorted(r.stderr.split("\n")[:2]), ["top level of __main__", "top level of __mp_main__"])
        self.assertEqual(r.stderr.count("top level of"), 2, r.stderr)

    def write_script(self, d, source):
        path = os.path.join(d, "main_script.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        return path

    def test_objects_of_main_script_classes_travel_both_ways(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = self.write_script(d, """
                import xchan

                class Point:
                    def __init__(self, x, y):
                        self.x, self.y = x, y

                class Refused(Exception):
                    pass

                def mirror(rx, tx):
                    p = rx.recv(timeout=30)
                    tx.send(Point(p.y, p.x))  # a __mp_main__.Point there
                    raise Refused(f"done with {p.x}")

                if __name__ == "__main__":
                    to_tx, to_rx = xchan.channel()
                    back_tx, back_rx = xchan.channel()
                    w = xchan.spawn(mirror, to_rx, back_tx)
                    to_tx.send(Point(1, 2))
                    got = back_rx.recv(timeout=30)
                    print(type(got).__module__, type(got).__name__, got.x, got.y, type(got) is Point)
                    try:
                        w.join()
                    except Refused as e:
                        print("raised", type(e).__name__, e)
            """)
            r = self.run_script("", script=path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["__main__ Point 2 1 True", "raised Refused done with 1"])

    def test_spawning_without_the_main_guard_is_a_clear_error(self):
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = self.write_script(d, """
                import xchan

                def work():
                    pass

                xchan.spawn(work).join()  # no `if __name__ == "__main__":`
                print("spawned")
            """)
            r = self.run_script("", script=path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("RuntimeError", r.stderr)
        self.assertIn("if __name__ == '__main__':", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_a_main_script_importing_a_module_that_cannot_load_in_a_subinterpreter(self):
        import importlib
        import tempfile
        refused = None
        for name in ("readline", "_curses", "_ctypes"):  # refused in subinterpreters here
            try:
                importlib.import_module(name)
            except ImportError:
                continue
            probe = subprocess.run([sys.executable, "-c", PROBE_SUBINTERPRETER_IMPORT, name], capture_output=True,
                                   text=True, timeout=60)
            if probe.stdout.strip() == "refused":
                refused = name
                break
        self.assertIsNotNone(refused, "no module here refuses to load in a subinterpreter")
        with tempfile.TemporaryDirectory() as d:
            path = self.write_script(d, f"""
                import {refused}
                import xchan

                def work():
                    pass

                if __name__ == "__main__":
                    try:
                        xchan.spawn(work)
                        print("spawned?!")
                    except ImportError as e:
                        print("ImportError:", e)
            """)
            r = self.run_script("", script=path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ImportError:", r.stdout)
        self.assertIn(repr(refused), r.stdout)
        self.assertIn("module of its own", r.stdout)

    def test_a_main_script_that_exits_when_re_run_in_the_worker_is_an_error(self):
        # As when an optional dependency cannot load there: `except ImportError: sys.exit()`.
        # The worker's function never runs, and spawn() must say so rather than succeed.
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            path = self.write_script(d, """
                import sys
                import xchan

                if __name__ != "__main__":
                    sys.exit("this tool needs its optional dependency")

                def work():
                    print("the function ran")

                if __name__ == "__main__":
                    try:
                        xchan.spawn(work).join()
                        print("spawned and joined?!")
                    except RuntimeError as e:
                        print("RuntimeError:", e)
            """)
            r = self.run_script("", script=path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("RuntimeError:", r.stdout)
        self.assertIn("this tool needs its optional dependency", r.stdout)
        self.assertIn("module of its own", r.stdout)
        self.assertNotIn("the function ran", r.stdout)

    def test_readme_quick_start_runs_as_written(self):
        here = os.path.dirname(os.path.abspath(__file__))
        script = os.path.join(here, "..", "..", "examples", "quick_start.py")
        r = self.run_script("", script=script)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), str(sum(n * n for n in range(1000))))

    def test_ctrl_c_interrupts_a_blocking_recv_and_loses_nothing(self):
        source = textwrap.dedent("""
            import os, signal, threading, xchan
            tx, rx = xchan.channel()
            threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
            try:
                rx.recv()  # no timeout: only Ctrl-C ends this wait
                print("returned?!")
            except KeyboardInterrupt:
                print("interrupted")
            tx.send("after")
            print(rx.recv(timeout=1), rx.qsize())
        """)
        r = self.run_script(source)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["interrupted", "after", "0"])


if __name__ == "__main__":
    unittest.main()
