"""numpy arrays through channels. Main interpreter only: numpy refuses to load in
subinterpreters (checked below), so an array can travel between threads of the main
interpreter and between processes (a shared channel to a forked child), not to a worker
interpreter. Skipped where numpy cannot be imported at all."""
import os
import unittest

import workers
import xchan

try:
    import numpy as np
except ImportError:  # not installed: requirements/test.txt has it
    np = None


@unittest.skipIf(np is None, "numpy is not installed")
class NumpyTest(unittest.TestCase):
    def test_arrays_arrive_equal_with_dtype_and_shape(self):
        tx, rx = xchan.channel(max_bytes=64 << 20)
        arrays = [np.arange(12, dtype=np.int16).reshape(3, 4), np.linspace(0, 1, 1001),
                  np.zeros((0, 5)), np.array(["a", "bc"]), np.arange(20)[::3],  # non-contiguous
                  np.asfortranarray(np.arange(6.0).reshape(2, 3))]
        for a in arrays:
            with self.subTest(dtype=str(a.dtype), shape=a.shape):
                tx.send(a)
                got = rx.recv(timeout=5)
                self.assertIsInstance(got, np.ndarray)
                self.assertEqual((got.dtype, got.shape), (a.dtype, a.shape))
                self.assertTrue(np.array_equal(got, a))

    def test_array_data_travels_out_of_band_where_pickle_allows(self):
        a = np.arange(100_000, dtype=np.float64)
        message = xchan._xchan._encode(a)
        self.assertEqual(message[:1], b"p")
        buffers = int.from_bytes(message[1:5], "little")
        # Out of band: the 800 KB of data follow as a raw buffer, not inside the pickle.
        self.assertEqual(buffers, 1 if xchan._xchan._out_of_band_pickle() else 0)
        self.assertTrue(np.array_equal(xchan._xchan._decode(message), a))

    def test_arrays_cross_processes_on_a_shared_channel(self):
        tx, rx = xchan.channel(shared=True, max_bytes=64 << 20)
        back_tx, back_rx = xchan.channel(shared=True, max_bytes=64 << 20)
        pid = os.fork()
        if pid == 0:  # the child: doubles every array it gets and sends it back
            code = 1
            try:
                tx.close()
                back_rx.close()
                for a in rx:
                    back_tx.send(a * 2)
                code = 0
            finally:
                xchan._xchan._shutdown()
                os._exit(code)
        rx.close()
        back_tx.close()
        arrays = [np.arange(1_000_000, dtype=np.float64), np.arange(12, dtype=np.int16).reshape(3, 4),
                  np.asfortranarray(np.arange(6.0).reshape(2, 3))]
        for a in arrays:
            tx.send(a)
        tx.close()
        got = list(back_rx)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertEqual(len(got), len(arrays))
        for a, b in zip(arrays, got):
            self.assertEqual((b.dtype, b.shape), (a.dtype, a.shape))
            self.assertTrue(np.array_equal(b, a * 2))

    def test_an_array_sent_to_a_worker_interpreter_cannot_be_received_there(self):
        tx, rx = xchan.channel()
        out_tx, out_rx = xchan.channel()
        w = xchan.spawn(workers.receive_one, rx, out_tx)
        tx.send(np.arange(3))
        report = out_rx.recv(timeout=60)
        w.join(60)
        # Unpickling the array imports numpy in the worker, which refuses to load there.
        self.assertTrue(report.startswith("ImportError"), report)
        self.assertIn("numpy", report)


if __name__ == "__main__":
    unittest.main()
