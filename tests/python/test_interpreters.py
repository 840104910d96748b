"""Channels between interpreters: xchan.spawn workers, stdlib-created subinterpreters,
ends passed by pickling and over channels, interpreters destroyed while holding ends.
Runs in the main interpreter and again inside an own-GIL subinterpreter."""
import pickle
import sys
import textwrap
import unittest

import xchan
import subinterp
import workers



class SpawnTest(unittest.TestCase):
    # spawn sends a call natively when it can (functions by name, ends as handles, native
    # values) and pickles it otherwise; both paths run here.
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

    def test_a_worker_exception_comes_back_as_itself_with_the_traceback_as_its_cause(self):
        w = xchan.spawn(workers.fail, "bad input 42")
        with self.assertRaises(ValueError) as cm:
            w.join()
        self.assertEqual(cm.exception.args, ("bad input 42",))
        cause = cm.exception.__cause__
        self.assertIsInstance(cause, xchan.WorkerError)
        self.assertIn("ValueError: bad input 42", cause.traceback_text)
        self.assertIn("workers.py", cause.traceback_text)
        self.assertFalse(w.is_alive())
        with self.assertRaises(workers.Failure) as cm:  # a class of an importable module
            xchan.spawn(workers.fail_with, "custom").join()
        self.assertEqual(cm.exception.detail, "custom")

    def test_a_worker_exception_that_cannot_be_rebuilt_here_is_a_worker_error(self):
        # Its class lives only in the worker (source code run there).
        w = xchan.spawn("class Local(Exception): pass\nraise Local('only there')")
        with self.assertRaises(xchan.WorkerError) as cm:
            w.join()
        self.assertIn("Local: only there", cm.exception.traceback_text)
        with self.assertRaises(xchan.WorkerError) as cm:  # its exception does not pickle
            xchan.spawn(workers.fail_unpicklably).join()
        self.assertIn("Unpicklable", cm.exception.traceback_text)

    def test_sys_exit_in_a_worker_is_an_ordinary_end(self):
        for code in (None, 0, 3, "message"):
            with self.subTest(code=code):
                self.assertIsNone(xchan.spawn(workers.exit_with, code).join())

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

    def test_queue_crosses_interpreters(self):
        q = xchan.Queue()
        xchan.spawn(workers.use_queue, q, 5).join()
        self.assertEqual([q.get(timeout=5) for _ in range(5)], [("q", i) for i in range(5)])

    def test_a_queue_only_the_worker_keeps_reaches_it(self):
        # A queue travels by id and exists while some copy of it does: here the caller's
        # copy goes as soon as spawn() returns, before the worker may have opened its own.
        tx, rx = xchan.channel()
        for _ in range(5):
            w = xchan.spawn(workers.fill_and_report, xchan.Queue(3), tx)
            w.join()
            self.assertEqual(rx.recv(timeout=30), [0, 1, 2])

    def test_ends_created_in_a_worker_come_back_over_a_channel(self):
        ctl_tx, ctl_rx = xchan.channel()
        ack_tx, ack_rx = xchan.channel()
        w = xchan.spawn(workers.send_ends_back, ctl_tx, ack_rx)
        tx, rx = ctl_rx.recv(timeout=30)
        ack_tx.send("got them")
        w.join()
        self.assertEqual(rx.recv(timeout=5), "made in a worker")
        tx.close()
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv(timeout=5)

    def test_ends_a_worker_pickled_close_when_it_ends_before_they_are_unpickled(self):
        ctl_tx, ctl_rx = xchan.channel()
        xchan.spawn(workers.send_ends_back, ctl_tx).join()  # ended: its parked ends are gone
        with self.assertRaises(xchan.ChannelClosed):
            ctl_rx.recv(timeout=5)
        self.assertEqual(ctl_rx.qsize(), 0)  # the message was consumed and reported

    def test_a_native_call_needs_neither_pickle_nor_queue_in_the_worker(self):
        tx, rx = xchan.channel()
        xchan.spawn(workers.report_imports, tx).join()
        (pickle_loaded, queue_loaded), full_is_queue_full = rx.recv(timeout=5)
        self.assertFalse(pickle_loaded)
        self.assertFalse(queue_loaded)
        self.assertTrue(full_is_queue_full)  # ChannelFull made on first use, still a queue.Full

    def test_joined_and_dropped_workers_are_not_kept(self):
        import math
        import time
        before = xchan._xchan._workers()
        for _ in range(20):
            xchan.spawn(math.factorial, 5).join()
        self.assertEqual(xchan._xchan._workers(), before)
        ws = [xchan.spawn(math.factorial, 5) for _ in range(5)]
        while any(w.is_alive() for w in ws):
            time.sleep(0.01)
        del ws  # finished, never joined, dropped: nobody can join them any more
        xchan.spawn(math.factorial, 5).join()  # spawning forgets those
        self.assertEqual(xchan._xchan._workers(), before)

    def test_builtin_functions_run_by_reference(self):
        import math
        xchan.spawn(math.factorial, 50).join()
        with self.assertRaises(ValueError) as cm:
            xchan.spawn(math.factorial, -1).join()
        self.assertIn("ValueError", cm.exception.__cause__.traceback_text)

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


if __name__ == "__main__":
    unittest.main()
