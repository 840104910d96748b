"""Channels between interpreters: xchan.spawn workers, stdlib-created subinterpreters,
ends passed by pickling and over channels, interpreters destroyed while holding ends.
Runs in the main interpreter and again inside an own-GIL subinterpreter."""
import os
import pickle
import subprocess
import sys
import textwrap
import unittest

import xchan
import subinterp
import workers

IN_MAIN = xchan._xchan._in_main_interpreter()
# Open bug (docs/python.md, "Known issues"): on CPython 3.12, pickling through xchan inside a
# subinterpreter created by the stdlib corrupts the heap, and the process aborts when it
# finalizes, after every test passed. Reproduced without xchan for pickle's
# buffer_callback; the rest is not root-caused. These tests run in the 3.12 main
# interpreter and in 3.13 subinterpreters.
PICKLE_UNSAFE_HERE = sys.version_info < (3, 13) and not xchan._xchan._in_main_interpreter()
needs_pickle = unittest.skipIf(PICKLE_UNSAFE_HERE, "CPython 3.12 subinterpreter pickling bug (see docs/python.md)")


class SpawnTest(unittest.TestCase):
    # spawn sends a call natively when it can (functions by name, ends as handles, native
    # values); tests marked needs_pickle pickle something in the interpreter running them.
    def test_many_interpreters_send_to_one_receiver_exactly_once_in_order(self):
        tx, rx = xchan.channel(capacity=64)
        n_workers, count = 4, 3000
        ws = [xchan.spawn(workers.produce, tx, w, count) for w in range(n_workers)]
        tx.close()
        last = [-1] * n_workers
        seen = 0
        for worker_id, seq, payload in rx:
            self.assertEqual(seq, last[worker_id] + 1, "per-producer order")
            self.assertEqual(payload, b"p" * (seq % 50))
            last[worker_id] = seq
            seen += 1
        for w in ws:
            w.join()
        self.assertEqual(seen, n_workers * count)
        self.assertEqual(last, [count - 1] * n_workers)

    def test_a_burst_from_another_interpreter_takes_back_room_from_an_idle_receiver(self):
        # The receiver (this interpreter) has drained a message and then only waits: the
        # worker's burst must fill the buffer, taking back the room behind the ring's early
        # wrap from a receiver it has to wait out in another interpreter.
        tx, rx = xchan.channel(capacity=1 << 20, max_bytes=1 << 20)
        tx.send(b"x" * 1000)
        rx.recv()
        out_tx, out_rx = xchan.channel()
        w = xchan.spawn(workers.burst, tx, out_tx)
        sent, undone = out_rx.recv(timeout=60)
        w.join()
        self.assertGreaterEqual(sent * 80 + 2 * 80, 1 << 20)  # records are 80 bytes
        self.assertEqual(undone, 1)
        for i in range(sent):
            self.assertEqual(rx.recv_nowait(), i.to_bytes(8, "little") * 8)
        with self.assertRaises(xchan.ChannelEmpty):
            rx.recv_nowait()

    def test_one_sender_fans_out_to_many_interpreters(self):
        jobs_tx, jobs_rx = xchan.channel(capacity=32)
        res_tx, res_rx = xchan.channel(capacity=4096)  # all results fit: we read them after sending
        ws = [xchan.spawn(workers.square_all, jobs_rx, res_tx) for _ in range(3)]
        jobs_rx.close()
        res_tx.close()
        jobs_tx.send_many(range(2000))
        jobs_tx.close()
        results = sorted(res_rx)
        for w in ws:
            w.join()
        self.assertEqual(results, sorted(n * n for n in range(2000)))

    def test_worker_exception_comes_back_as_worker_error_with_traceback(self):
        w = xchan.spawn(workers.fail, "bad input 42")
        with self.assertRaises(xchan.WorkerError) as cm:
            w.join()
        self.assertIn("ValueError: bad input 42", cm.exception.traceback_text)
        self.assertIn("workers.py", cm.exception.traceback_text)
        self.assertFalse(w.is_alive())

    def test_join_with_timeout_and_is_alive(self):
        tx, rx = xchan.channel()
        w = xchan.spawn(workers.echo, rx, xchan.channel()[0])
        w.join(timeout=0.05)
        self.assertTrue(w.is_alive())
        tx.close()  # the worker's loop ends
        rx.close()
        w.join(timeout=30)
        self.assertFalse(w.is_alive())

    def test_source_code_workers(self):
        tx, rx = xchan.channel()
        w = xchan.spawn("args[0].send(sum(range(10)))", tx)
        w.join()
        self.assertEqual(rx.recv(timeout=5), 45)

    @needs_pickle
    def test_queue_crosses_interpreters(self):
        q = xchan.Queue()
        xchan.spawn(workers.use_queue, q, 5).join()
        self.assertEqual([q.get(timeout=5) for _ in range(5)], [("q", i) for i in range(5)])

    @needs_pickle
    def test_ends_created_in_a_worker_come_back_over_a_channel(self):
        ctl_tx, ctl_rx = xchan.channel()
        w = xchan.spawn(workers.send_ends_back, ctl_tx)
        tx, rx = ctl_rx.recv(timeout=30)
        w.join()
        self.assertEqual(rx.recv(timeout=5), "made in a worker")
        tx.close()
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv(timeout=5)

    def test_a_native_call_needs_neither_pickle_nor_queue_in_the_worker(self):
        tx, rx = xchan.channel()
        xchan.spawn(workers.report_imports, tx).join()
        (pickle_loaded, queue_loaded), full_is_queue_full = rx.recv(timeout=5)
        self.assertFalse(pickle_loaded)
        self.assertFalse(queue_loaded)
        self.assertTrue(full_is_queue_full)  # ChannelFull made on first use, still a queue.Full

    def test_builtin_functions_run_by_reference(self):
        import math
        xchan.spawn(math.factorial, 50).join()
        with self.assertRaises(xchan.WorkerError) as cm:
            xchan.spawn(math.factorial, -1).join()
        self.assertIn("ValueError", cm.exception.traceback_text)

    @needs_pickle
    def test_calls_with_other_arguments_are_pickled_and_lose_no_end(self):
        parked_before = xchan._xchan._parked_ends()
        tx, rx = xchan.channel()
        # A set and a range are not native; a bytearray would arrive as bytes natively, so it
        # goes through pickle too and keeps its type, as with multiprocessing.
        xchan.spawn(workers.send_back, tx, {1, 2}, range(3)).join()
        self.assertEqual(rx.recv(timeout=5), ({1, 2}, range(3)))
        xchan.spawn(workers.send_type_back, tx, [bytearray(b"ab")]).join()
        self.assertEqual(rx.recv(timeout=5), "list of bytearray")
        self.assertEqual(xchan._xchan._parked_ends(), parked_before)  # each end parked once, and taken
        tx.close()
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv(timeout=0)  # the worker's end is closed too: no sender is left open

    @needs_pickle
    def test_spawn_rejects_what_it_cannot_run(self):
        with self.assertRaises(Exception):
            xchan.spawn(lambda: None)  # not importable by name
        with self.assertRaises(TypeError):
            xchan.spawn(42)
        with self.assertRaises(ValueError):
            xchan.spawn(workers.fail, "x", isolate="thread")
        with self.assertRaises(NotImplementedError):
            xchan.spawn(workers.fail, "x", isolate="process")


class StdlibSubinterpreterTest(unittest.TestCase):
    def test_module_imports_in_an_own_gil_subinterpreter(self):
        subinterp.run_isolated("import xchan; tx, rx = xchan.channel(); tx.send(1); assert rx.recv() == 1")

    @needs_pickle
    def test_destroyed_interpreter_releases_its_ends_and_its_messages_survive(self):
        tx, rx = xchan.channel()
        m, iid = subinterp.create()
        blob = pickle.dumps(tx)
        tx.close()
        subinterp.run(m, iid, textwrap.dedent(f"""
            import pickle
            tx = pickle.loads({blob!r})
            for i in range(100):
                tx.send(("from subinterpreter", i, bytes(range(256)) * 4))
            keep = tx  # never closed: destroying the interpreter must drop it
        """))
        m.destroy(iid)
        got = list(rx)  # ends: the destroyed interpreter's sender is gone
        self.assertEqual(len(got), 100)
        for i, item in enumerate(got):
            self.assertEqual(item, ("from subinterpreter", i, bytes(range(256)) * 4))

    @needs_pickle
    def test_destroyed_interpreter_holding_the_receiver_disconnects_senders(self):
        parked_before = xchan._xchan._parked_ends()
        tx, rx = xchan.channel()
        m, iid = subinterp.create()
        blob = pickle.dumps(rx)
        rx.close()
        subinterp.run(m, iid, f"import pickle; rx = pickle.loads({blob!r})")
        tx.send("queued before")
        m.destroy(iid)
        with self.assertRaises(xchan.ChannelClosed):
            tx.send("after")
        self.assertEqual(xchan._xchan._parked_ends(), parked_before)  # the pickled end was taken


@unittest.skipUnless(IN_MAIN, "starts subprocesses (not allowed in isolated interpreters)")
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
