"""Ends in transit: a pickled end is parked under a random token, unpickled at most once,
refused if the pickle was edited, and closed when the interpreter that pickled it ends
first. Queues travel by id instead. Runs in the main interpreter and again inside an
own-GIL subinterpreter."""
import io
import pickle
import textwrap
import unittest

import xchan
import subinterp


def token_of(data):
    """The (token, channel id, is_sender) a pickled end carries: unpickled with _attach
    replaced by a recorder."""
    found = []

    class Spy(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("xchan._xchan", "_attach"):
                return lambda *args: found.append(args) or None
            return super().find_class(module, name)

    Spy(io.BytesIO(data)).load()
    return found[0]


class PickledEndTest(unittest.TestCase):
    def test_an_end_is_unpickled_at_most_once(self):
        tx, rx = xchan.channel()
        data = pickle.dumps(tx)
        tx2 = pickle.loads(data)
        with self.assertRaises(xchan.ChannelClosed) as cm:
            pickle.loads(data)
        self.assertIn("at most once", str(cm.exception))
        tx2.send("one end, one sender")
        tx.close()
        tx2.close()
        self.assertEqual(list(rx), ["one end, one sender"])  # nobody else can send now

    def test_stale_bytes_do_not_reopen_a_channel_its_peer_saw_closed(self):
        tx, rx = xchan.channel()
        data = pickle.dumps(tx)
        pickle.loads(data).close()
        tx.close()
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv(timeout=1)  # the receiver saw the channel closed...
        with self.assertRaises(xchan.ChannelClosed):
            pickle.loads(data)  # ...and old bytes cannot open it again

    def test_tokens_are_random_128_bit_and_bound_to_their_end(self):
        tx, rx = xchan.channel()
        tokens = {token_of(pickle.dumps(tx))[0] for _ in range(50)}
        self.assertEqual(len(tokens), 50)
        self.assertTrue(all(type(t) is bytes and len(t) == 16 for t in tokens))
        # Not a counter: consecutive tokens differ in about half of their bits.
        ordered = [int.from_bytes(t, "little") for t in tokens]
        diffs = [bin(a ^ b).count("1") for a, b in zip(ordered, ordered[1:])]
        self.assertGreater(min(diffs), 20)
        token, channel_id, is_sender = token_of(pickle.dumps(rx))
        attach = xchan._xchan._attach
        with self.assertRaises(xchan.ChannelError):
            attach(token, channel_id, not is_sender)  # a Receiver's token as a Sender
        with self.assertRaises(xchan.ChannelError):
            attach(token, channel_id + 1, is_sender)  # another channel
        with self.assertRaises(xchan.ChannelError):
            attach(token[:8], channel_id, is_sender)  # malformed
        with self.assertRaises(xchan.ChannelClosed):
            attach(bytes(16), channel_id, is_sender)  # made up
        rx2 = attach(token, channel_id, is_sender)  # the real one still works
        tx.send(1)
        self.assertEqual(rx2.recv(timeout=5), 1)

    def test_ends_parked_by_an_interpreter_close_when_it_ends(self):
        parked_before = xchan._xchan._parked_ends()
        tx, rx = xchan.channel()
        out_tx, out_rx = xchan.channel()
        m, iid = subinterp.create()
        try:
            subinterp.run(m, iid, textwrap.dedent(f"""
                import pickle
                out = pickle.loads({pickle.dumps(out_tx)!r})
                tx = pickle.loads({pickle.dumps(tx)!r})
                for _ in range(1000):
                    pickle.dumps(tx)  # parked, never unpickled
                out.send(pickle.dumps(tx))
            """))
            data = out_rx.recv(timeout=30)
            self.assertGreaterEqual(xchan._xchan._parked_ends(), parked_before + 1001)
        finally:
            m.destroy(iid)
        self.assertEqual(xchan._xchan._parked_ends(), parked_before)
        tx.close()
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv(timeout=5)  # no sender is left: the parked ones went with their interpreter
        with self.assertRaises(xchan.ChannelClosed):
            pickle.loads(data)

    def test_an_end_in_a_message_that_is_not_sent_does_not_stay_open(self):
        # The end is pickled (parked) before the send fails: it must be closed again, or
        # its channel could never close (a worker looping over it would never end).
        class Refuses:
            def __reduce__(self):
                raise ValueError("cannot pickle this one")

        parked_before = xchan._xchan._parked_ends()
        tx, rx = xchan.channel()
        full_tx, full_rx = xchan.channel(capacity=1)
        full_tx.send("occupied")
        attempts = [
            ("send times out", xchan.ChannelFull, lambda: full_tx.send(("reply to", tx), timeout=0.05)),
            ("send_nowait finds it full", xchan.ChannelFull, lambda: full_tx.send_nowait([tx])),
            ("pickling fails after the end", ValueError, lambda: full_tx.send((tx, Refuses()))),
            ("send_many: the items not sent", xchan.ChannelFull,
             lambda: full_tx.send_many([(tx,), {"r": tx}], timeout=0.05)),
        ]
        for name, error, attempt in attempts:
            with self.subTest(name):
                with self.assertRaises(error):
                    attempt()
                self.assertEqual(xchan._xchan._parked_ends(), parked_before)
        tx.close()
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv(timeout=5)  # no sender is left anywhere

    def test_an_end_in_a_message_sent_stays_usable(self):
        tx, rx = xchan.channel()
        box_tx, box_rx = xchan.channel(capacity=3)
        box_tx.send(("reply to", tx))
        self.assertEqual(box_tx.send_many([{"r": tx}, [tx]], timeout=0.05), 2)  # all went
        tx.close()
        arrived = [box_rx.recv(timeout=5)[1], box_rx.recv(timeout=5)["r"], box_rx.recv(timeout=5)[0]]
        for i, end in enumerate(arrived):
            end.send(i)
            end.close()
        self.assertEqual(list(rx), [0, 1, 2])

    def test_a_partly_sent_batch_closes_only_the_ends_of_items_that_did_not_go(self):
        tx, rx = xchan.channel()
        box_tx, box_rx = xchan.channel(capacity=1)
        with self.assertRaises(xchan.ChannelFull) as cm:
            box_tx.send_many([("went", tx), ("stayed", tx)], timeout=0.05)
        self.assertEqual(cm.exception.sent, 1)
        tx.close()
        label, end = box_rx.recv(timeout=5)
        self.assertEqual(label, "went")
        end.send("still open")
        end.close()
        self.assertEqual(list(rx), ["still open"])


class QueueIdentityTest(unittest.TestCase):
    def test_a_queue_pickles_by_id_and_every_copy_is_the_same_queue(self):
        parked_before = xchan._xchan._parked_ends()
        q = xchan.Queue()
        data = pickle.dumps(q)
        self.assertEqual(xchan._xchan._parked_ends(), parked_before)  # nothing in transit
        a, b = pickle.loads(data), pickle.loads(data)  # any number of times
        self.assertEqual(a.id, q.id)
        a.put("via a")
        self.assertEqual(b.get(timeout=5), "via a")

    def test_a_plain_channel_cannot_be_opened_by_its_id(self):
        tx, rx = xchan.channel()
        with self.assertRaises(xchan.ChannelClosed):
            xchan._xchan._attach_queue(tx._channel_id)

    def test_a_queue_whose_copies_are_all_gone_cannot_be_unpickled(self):
        q = xchan.Queue()
        data = pickle.dumps(q)
        del q
        with self.assertRaises(xchan.QueueNotFoundError):
            pickle.loads(data)


if __name__ == "__main__":
    unittest.main()
