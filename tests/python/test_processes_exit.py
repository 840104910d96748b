"""How a program ends with xchan calls in flight: daemon threads blocked in each blocking
call at interpreter exit (normal exit, sys.exit, Ctrl-C), workers still running at exit
(Ctrl-C, daemon workers, closing the ends they wait on), worker failures nobody joined, and
fork(). Each case runs a small script in a child process. Main interpreter only (isolated
interpreters may not start processes)."""
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CRASH_MARKS = ("Segmentation fault", "Fatal Python error", "core dumped", "terminate called", "Aborted")


def script_env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([HERE] + [p for p in sys.path if p]))


SCRIPTS = tempfile.TemporaryDirectory(prefix="xchan-exit-tests-")


def tearDownModule():
    SCRIPTS.cleanup()


def write_script(source):
    fd, path = tempfile.mkstemp(suffix=".py", dir=SCRIPTS.name)
    with os.fdopen(fd, "w") as f:
        f.write(textwrap.dedent(source))
    return path


def run_script(source, *args, timeout=60):
    return subprocess.run([sys.executable, write_script(source), *args], env=script_env(), capture_output=True,
                          text=True, timeout=timeout)


def start_script(source, *args):
    """The script as a running child (for signals); the caller waits for it."""
    return subprocess.Popen([sys.executable, write_script(source), *args], env=script_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


BLOCKED_DAEMON = """
    import os, signal, sys, threading, time
    import xchan, workers

    call, how = sys.argv[1], sys.argv[2]
    tx, rx = xchan.channel(capacity=1)
    if call in ("send", "send_many", "queue_put"):
        tx.send_nowait("fill")
    q = xchan.Queue(maxsize=1)
    if call == "queue_put":
        q.put_nowait("fill")
    worker = xchan.spawn(workers.spin, daemon=True) if call == "join" else None
    calls = {
        "recv": lambda: rx.recv(),
        "recv_many": lambda: rx.recv_many(4),
        "iteration": lambda: list(rx),
        "send": lambda: tx.send("x"),
        "send_many": lambda: tx.send_many(["a", "b"]),
        "join": lambda: worker.join(),
        "queue_get": lambda: q.get(),
        "queue_put": lambda: q.put("x"),
    }
    started = threading.Event()

    def blocked():
        started.set()
        while True:  # back into the call after whatever ended it, until the process ends
            try:
                calls[call]()
            except Exception:
                time.sleep(0.001)

    for _ in range(2):
        threading.Thread(target=blocked, daemon=True).start()
    started.wait()
    time.sleep(0.2)  # the threads are blocked by now
    print("blocked", flush=True)
    if how == "sys.exit":
        sys.exit(3)
    if how == "ctrl-c":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)
"""


class ExitWithBlockedDaemonThreadsTest(unittest.TestCase):
    CALLS = ("recv", "recv_many", "iteration", "send", "send_many", "join", "queue_get", "queue_put")
    EXITS = {"normal": 0, "sys.exit": 3, "ctrl-c": -signal.SIGINT}

    def test_exit_is_clean_with_daemon_threads_blocked_in_every_blocking_call(self):
        for call in self.CALLS:
            for how, status in self.EXITS.items():
                with self.subTest(call=call, exit=how):
                    r = run_script(BLOCKED_DAEMON, call, how)
                    self.assertEqual(r.stdout.strip(), "blocked", r.stderr)
                    self.assertEqual(r.returncode, status, r.stderr[-3000:])
                    for mark in CRASH_MARKS:
                        self.assertNotIn(mark, r.stderr)


RUNNING_WORKER = """
    import sys, time
    import xchan, workers

    daemon = sys.argv[1] == "daemon"
    w = xchan.spawn(workers.spin if sys.argv[2] == "python" else workers.sleep_in_c, daemon=daemon)
    time.sleep(0.2)
    print("running", flush=True)
"""


class WorkersAtExitTest(unittest.TestCase):
    def test_ctrl_c_while_exit_waits_for_a_worker_stops_it_and_the_process_exits(self):
        p = start_script(RUNNING_WORKER, "joined", "python")
        self.assertEqual(p.stdout.readline().strip(), "running")
        time.sleep(0.5)  # now waiting for the worker at exit
        self.assertIsNone(p.poll(), "exit did not wait for the running worker")
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("KeyboardInterrupt", err)
        self.assertIn("workers.spin", err)  # the worker was stopped by the same Ctrl-C
        for mark in CRASH_MARKS:
            self.assertNotIn(mark, err)

    def test_ctrl_c_with_a_worker_stuck_in_c_code_reports_it_and_ends_the_process(self):
        p = start_script(RUNNING_WORKER, "joined", "c")
        self.assertEqual(p.stdout.readline().strip(), "running")
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("workers.sleep_in_c", err)
        self.assertIn("ending the process", err)
        for mark in CRASH_MARKS:
            self.assertNotIn(mark, err)

    def test_a_daemon_worker_is_stopped_at_exit_and_the_exit_status_is_kept(self):
        t0 = time.monotonic()
        r = run_script(RUNNING_WORKER + "    sys.exit(4)\n", "daemon", "python")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertLess(time.monotonic() - t0, 20)
        self.assertNotIn("Traceback", r.stderr)  # SystemExit ends a worker quietly

    def test_a_daemon_worker_that_does_not_stop_is_reported(self):
        r = run_script(RUNNING_WORKER, "daemon", "c")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("workers.sleep_in_c", r.stderr)
        self.assertIn("did not stop", r.stderr)

    def test_closing_the_ends_a_worker_waits_on_stops_it(self):
        r = run_script("""
            import xchan, workers
            tx, rx = xchan.channel()
            out_tx, out_rx = xchan.channel()
            w = xchan.spawn(workers.echo, rx, out_tx)
            tx.send("one")
            print(out_rx.recv(timeout=30), flush=True)
            # No close, no join: exit closes this interpreter's ends, so the worker's loop
            # ends, and exit waits for it.
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["one"])
        self.assertEqual(r.stderr, "")

    def test_spawn_after_exit_began_is_refused_and_exit_does_not_hang(self):
        # An atexit handler registered before `import xchan` runs after xchan's own exit
        # step, which waits for workers: a worker spawned there would not be waited for.
        r = run_script("""
            import atexit, sys

            def late():
                import xchan, workers
                try:
                    xchan.spawn(workers.noop)
                except RuntimeError as e:
                    print("refused:", e, flush=True)

            atexit.register(late)
            import xchan
        """, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "refused: cannot spawn a worker at interpreter shutdown")

    def test_daemon_threads_that_keep_spawning_do_not_hold_up_exit(self):
        r = run_script("""
            import threading, time
            import xchan, workers

            def refill():
                while True:
                    xchan.spawn(workers.noop).join()

            for _ in range(3):
                threading.Thread(target=refill, daemon=True).start()
            time.sleep(0.3)
            print("main done", flush=True)
        """, timeout=60)
        self.assertEqual(r.stdout.strip(), "main done")
        self.assertEqual(r.returncode, 0, r.stderr)
        for mark in CRASH_MARKS:
            self.assertNotIn(mark, r.stderr)

    def test_an_end_in_a_send_that_failed_does_not_keep_a_worker_and_exit_waiting(self):
        r = run_script("""
            import xchan, workers
            jobs_tx, jobs_rx = xchan.channel()
            res_tx, res_rx = xchan.channel()
            w = xchan.spawn(workers.echo, jobs_rx, res_tx)
            jobs_rx.close(); res_tx.close()
            ctl_tx, ctl_rx = xchan.channel(capacity=1)
            ctl_tx.send("occupied")
            try:
                ctl_tx.send(("here is a sender", jobs_tx), timeout=0.1)
            except xchan.ChannelFull:
                pass
            jobs_tx.send("one")
            jobs_tx.close()
            print(list(res_rx), flush=True)  # ends: the worker's loop saw the channel close
        """, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), "['one']")


class UnjoinedWorkerFailuresTest(unittest.TestCase):
    def test_a_failure_nobody_joins_is_printed_at_exit(self):
        r = run_script("""
            import time, xchan, workers
            w = xchan.spawn(workers.fail, "nobody joins me")
            time.sleep(0.5)
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.count("ValueError: nobody joins me"), 1, r.stderr)
        self.assertIn("Exception in xchan worker workers.fail (never joined)", r.stderr)

    def test_a_failure_is_printed_when_its_worker_object_is_dropped(self):
        r = run_script("""
            import sys, time, xchan, workers
            w = xchan.spawn(workers.fail, "dropped after it failed")
            while w.is_alive():
                time.sleep(0.01)
            del w
            print("dropped", flush=True)
            sys.stderr.flush()
            time.sleep(0.2)
            w2 = xchan.spawn(workers.fail_later, 0.5, "dropped while it ran")
            del w2
            time.sleep(2)
            print("end", flush=True)
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.count("ValueError: dropped after it failed"), 1, r.stderr)
        self.assertEqual(r.stderr.count("ValueError: dropped while it ran"), 1, r.stderr)

    def test_a_joined_failure_is_not_printed_again(self):
        r = run_script("""
            import xchan, workers
            try:
                xchan.spawn(workers.fail, "joined").join()
            except ValueError:
                print("raised", flush=True)
        """)
        self.assertEqual(r.stdout.split(), ["raised"])
        self.assertNotIn("joined", r.stderr)


class ForkTest(unittest.TestCase):
    def test_a_forked_child_cannot_use_channels_made_before_the_fork(self):
        r = run_script("""
            import os, xchan
            tx, rx = xchan.channel()
            tx.send_many(["a", "b"])
            pid = os.fork()
            if pid == 0:
                errors = []
                for call in (rx.recv_nowait, lambda: tx.send("from the child"), rx.qsize, tx.clone):
                    try:
                        call()
                        errors.append("worked")
                    except xchan.ChannelError as e:
                        errors.append(type(e).__name__ + (" fork" if "fork" in str(e) else ""))
                fresh_tx, fresh_rx = xchan.channel()
                fresh_tx.send("new")
                ok = errors == ["ChannelError fork"] * 4 and tx.closed and rx.closed and fresh_rx.recv() == "new"
                print("child", errors, tx.closed, flush=True)
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
            print("parent", rx.recv_nowait(), rx.recv_nowait(), rx.qsize(), flush=True)
        """)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("child exit 0", r.stdout, r.stdout)
        self.assertIn("parent a b 0", r.stdout)  # each message once, in the parent

    def test_a_child_does_not_wait_for_or_join_the_parents_workers(self):
        # The worker has finished (not joined) when the process forks: CPython itself does
        # not survive a fork while another interpreter runs (the child hangs on 3.12.1 and
        # aborts on 3.13.0 with the stdlib alone; docs/python.md, "fork()").
        r = run_script("""
            import os, sys, time, xchan, workers
            w = xchan.spawn(workers.fail, "in the parent")
            while w.is_alive():
                time.sleep(0.01)
            pid = os.fork()
            if pid == 0:
                try:
                    w.join()
                    print("joined?!", flush=True)
                except RuntimeError as e:
                    print("child:", e, flush=True)
                print("alive in child:", w.is_alive(), flush=True)
                sys.exit(0)  # a normal exit: must not wait for the parent's worker
            _, status = os.waitpid(pid, 0)
            print("child exit", os.waitstatus_to_exitcode(status), flush=True)
            try:
                w.join()
            except ValueError:
                print("parent joined", flush=True)
        """, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("child: can only join a worker started by this process", r.stdout)
        self.assertIn("alive in child: False", r.stdout)
        self.assertIn("child exit 0", r.stdout)
        self.assertIn("parent joined", r.stdout)
        self.assertNotIn("never joined", r.stderr)  # the child reports none of the parent's


if __name__ == "__main__":
    unittest.main()
