"""The public API used the way its stubs say, fully annotated: `make test` type-checks this
module with mypy --strict against the .pyi stubs (tests/python/check_types.py), and the
suite runs it like any other, so the stubs and the behaviour cannot drift apart."""
import pickle
import unittest

import xchan
import workers


def pipeline(items: list[int]) -> list[int]:
    jobs_tx, jobs_rx = xchan.channel(capacity=16, max_bytes=1 << 16)
    res_tx, res_rx = xchan.channel()
    worker: xchan.Worker = xchan.spawn(workers.square_all, jobs_rx, res_tx, daemon=False)
    jobs_rx.close()
    res_tx.close()
    sent: int = jobs_tx.send_many(items, timeout=10.0)
    assert sent == len(items)
    jobs_tx.close()
    got: list[int] = sorted(res_rx)
    worker.join(timeout=30.0)
    return got


class TypedApiTest(unittest.TestCase):
    def test_channels(self) -> None:
        tx, rx = xchan.channel()
        with tx.clone() as tx2:
            tx2.send(b"x", timeout=1.0)
            tx2.send_nowait("y")
        self.assertEqual(rx.recv(timeout=1.0), b"x")
        self.assertEqual(rx.recv_nowait(), "y")
        tx.send_many([1, 2, 3])
        batch: list[object] = rx.recv_many(max_items=2, timeout=None)
        self.assertEqual(batch, [1, 2])
        stats: dict[str, int] = rx.stats()
        self.assertEqual(stats["queued"], rx.qsize())
        self.assertLessEqual(xchan.max_message_for(4096), stats["max_bytes"])
        rx2: xchan.Receiver = pickle.loads(pickle.dumps(rx.clone()))
        self.assertEqual(rx2.recv(timeout=1.0), 3)
        tx.close()
        self.assertTrue(tx.closed)
        try:
            rx.recv(timeout=0)
        except xchan.ChannelClosed as e:
            self.assertIsInstance(e, xchan.ChannelError)
        try:
            tx.send_many([1])
        except xchan.ChannelError as e:
            self.assertEqual(e.sent, 0)

    def test_workers_and_queues(self) -> None:
        self.assertEqual(pipeline(list(range(10))), [n * n for n in range(10)])
        w = xchan.spawn(workers.fail, "typed")
        try:
            w.join()
        except ValueError as e:
            cause = e.__cause__
            assert isinstance(cause, xchan.WorkerError)
            self.assertIn("typed", cause.traceback_text)
        self.assertFalse(w.is_alive())
        self.assertFalse(w.daemon)
        q: xchan.Queue = xchan.create_queue(2)
        q.put(1, block=True, timeout=1.0)
        q.put_nowait(2)
        self.assertTrue(q.full())
        self.assertEqual(xchan.Queue.from_id(q.id), q)
        try:
            q.put(3, False)
        except xchan.QueueFull:
            pass
        self.assertEqual((q.get(), q.get_nowait(), q.empty(), q.maxsize), (1, 2, True, 2))
        self.assertIsInstance(xchan.__version__, str)


if __name__ == "__main__":
    unittest.main()
