"""Shared channels (channel(shared=True)) between processes made by fork(): os.fork and
multiprocessing's 'fork' start method; a peer killed with SIGKILL is PeerDied, never a
hang. Main interpreter only (isolated interpreters may not fork)."""
import multiprocessing
import os
import pickle
import signal
import sys
import time
import unittest

import xchan

DETECTION_BOUND = 1.5  # seconds: the contract for a peer that dies


def fork_child(body):
    """Runs body() in a forked child, which exits 0 if it returns normally, 1 if it raises
    (after printing the error to stderr). Its copies of the parent's ends are closed as a
    normal exit closes them (xchan's atexit step), then it leaves without running the
    rest of the parent's cleanup (unittest's)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            body()
        except BaseException as e:
            print(f"child failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            code = 1
        xchan._xchan._shutdown()
        os._exit(code)
    return pid


def wait_child(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def send_numbers(tx, n):
    for i in range(n):
        tx.send(("item", i))
    tx.close()


def send_without_closing(tx, n):
    for i in range(n):
        tx.send(("item", i))


class SharedChannelProcessTest(unittest.TestCase):
    def test_shared_must_be_a_bool(self):
        with self.assertRaises(TypeError):
            xchan.channel(shared=1)
        tx, rx = xchan.channel(shared=True)
        tx.send("in one process too")
        self.assertEqual(rx.recv(timeout=5), "in one process too")

    def test_a_forked_child_sends_and_the_channel_closes_when_it_is_done(self):
        tx, rx = xchan.channel(shared=True, capacity=64, max_bytes=1 << 16)
        pid = fork_child(lambda: send_numbers(tx, 2000))
        tx.close()  # the parent's own sender: now only the child's keeps the channel open
        self.assertEqual(list(rx), [("item", i) for i in range(2000)])  # ends with ChannelClosed
        self.assertEqual(wait_child(pid), 0)

    def test_a_forked_child_receives_what_the_parent_sends(self):
        tx, rx = xchan.channel(shared=True, capacity=8)
        back_tx, back_rx = xchan.channel(shared=True)

        def child():
            tx.close()  # its copy of the sender, or its own loop below would never end (as with pipes)
            back_tx.send(sum(x for x in rx))
            back_tx.close()

        pid = fork_child(child)
        rx.close()
        back_tx.close()
        tx.send_many(range(1000))
        tx.close()
        self.assertEqual(back_rx.recv(timeout=30), sum(range(1000)))
        self.assertEqual(wait_child(pid), 0)

    def test_a_sender_killed_with_sigkill_is_peer_died_after_what_it_sent(self):
        tx, rx = xchan.channel(shared=True, capacity=16)

        def child():
            i = 0
            while True:
                tx.send(i)
                i += 1

        pid = fork_child(child)
        tx.close()
        got = [rx.recv(timeout=30) for _ in range(500)]
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        with self.assertRaises(xchan.PeerDied):
            while True:
                got.append(rx.recv(timeout=10))
        self.assertLess(time.monotonic() - killed, DETECTION_BOUND)
        self.assertEqual(got, list(range(len(got))))  # in order, nothing lost or doubled
        self.assertTrue(issubclass(xchan.PeerDied, xchan.ChannelClosed))
        wait_child(pid)

    def test_a_for_loop_does_not_end_quietly_when_its_sender_died(self):
        tx, rx = xchan.channel(shared=True)

        def child():
            tx.send_many(range(100))
            os.kill(os.getpid(), signal.SIGKILL)

        pid = fork_child(child)
        tx.close()
        got = []
        with self.assertRaises(xchan.PeerDied):
            for x in rx:
                got.append(x)
        self.assertEqual(got, list(range(100)))  # everything it sent, then the error
        wait_child(pid)

    def test_a_receiver_killed_while_the_sender_waits_for_room_is_peer_died(self):
        tx, rx = xchan.channel(shared=True, capacity=2)

        def child():
            rx.recv()  # holds its receiver (opened by this first use), takes one
            time.sleep(3600)

        pid = fork_child(child)
        rx.close()
        tx.send("taken")
        tx.send_many(["fills", "it"])
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        with self.assertRaises(xchan.PeerDied):
            tx.send("no room, and nobody left to make any", timeout=10)
        self.assertLess(time.monotonic() - killed, DETECTION_BOUND)
        wait_child(pid)

    def test_a_stopped_process_is_not_dead(self):
        tx, rx = xchan.channel(shared=True)
        go_tx, go_rx = xchan.channel(shared=True)

        def child():
            go_rx.recv()
            tx.send("resumed")
            tx.close()

        pid = fork_child(child)
        tx.close()
        go_rx.close()
        time.sleep(0.2)
        os.kill(pid, signal.SIGSTOP)
        with self.assertRaises(xchan.ChannelEmpty):
            rx.recv(timeout=DETECTION_BOUND + 0.5)  # not PeerDied
        os.kill(pid, signal.SIGCONT)
        go_tx.send("go")
        self.assertEqual(rx.recv(timeout=30), "resumed")
        with self.assertRaises(xchan.ChannelClosed) as cm:
            rx.recv(timeout=30)
        self.assertNotIsInstance(cm.exception, xchan.PeerDied)  # it closed its end and exited
        self.assertEqual(wait_child(pid), 0)

    def test_multiprocessing_fork_start_method(self):
        # The children do not close their ends: a multiprocessing child closes them as it
        # exits (a finalizer), so the loop below ends with ChannelClosed, not PeerDied.
        ctx = multiprocessing.get_context("fork")
        tx, rx = xchan.channel(shared=True)
        procs = [ctx.Process(target=send_without_closing, args=(tx, 300)) for _ in range(3)]
        for p in procs:
            p.start()
        tx.close()
        got = list(rx)
        for p in procs:
            p.join(30)
            self.assertEqual(p.exitcode, 0)
        self.assertEqual(sorted(got), sorted([("item", i) for i in range(300)] * 3))

    def test_an_end_pickled_for_another_process_is_refused_with_a_clear_error(self):
        tx, rx = xchan.channel(shared=True)
        data = pickle.dumps(tx)
        result_tx, result_rx = xchan.channel(shared=True)

        def child():
            try:
                pickle.loads(data)
                result_tx.send("unpickled?!")
            except xchan.ChannelError as e:
                result_tx.send(str(e))

        pid = fork_child(child)
        result_tx.close()
        message = result_rx.recv(timeout=30)
        self.assertIn("pickled in another process", message)
        self.assertEqual(wait_child(pid), 0)
        self.assertIsInstance(pickle.loads(data), xchan.Sender)  # in this process it works

    def test_a_private_channel_is_still_refused_in_a_forked_child(self):
        tx, rx = xchan.channel()
        result_tx, result_rx = xchan.channel(shared=True)

        def child():
            try:
                tx.send(1)
                result_tx.send("sent?!")
            except xchan.ChannelError as e:
                result_tx.send(type(e).__name__)

        pid = fork_child(child)
        result_tx.close()
        self.assertEqual(result_rx.recv(timeout=30), "ChannelError")
        self.assertEqual(wait_child(pid), 0)


if __name__ == "__main__":
    unittest.main()
