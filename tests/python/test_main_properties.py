"""Property tests (hypothesis): every value arrives as pickle would give it back, types
included, within an interpreter and through another one; random interleavings of sends,
receives, clones and closes never lose, duplicate or reorder a sender's messages. Main
interpreter only (hypothesis's native module refuses to load in subinterpreters); the
values still cross into a worker interpreter and back."""
import math
import pickle
import unittest

from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

import workers
import xchan


def same(a, b):
    """Equal with the same types all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items()) and \
            all(same(k1, k2) for k1, k2 in zip(a, b))
    if isinstance(a, workers.Record):
        return same(vars(a), vars(b))
    return a == b


keys = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.binary(),
                 st.tuples(st.integers(), st.text()))
leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=300), st.binary(max_size=300).map(bytearray),
    st.text(max_size=100), st.text(alphabet=st.characters(categories=["Cs"]), max_size=3),  # lone surrogates: pickled
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(keys, children, max_size=6),
        st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), children, max_size=4).map(
            lambda d: workers.Record(**d)),
    ),
    max_leaves=30,
)

SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


class CodecPropertyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tx, cls.rx = xchan.channel(max_bytes=8 << 20)
        cls.to_tx, to_rx = xchan.channel(max_bytes=8 << 20)
        back_tx, cls.back_rx = xchan.channel(max_bytes=8 << 20)
        cls.echo = xchan.spawn(workers.echo, to_rx, back_tx)  # re-sends what it gets
        to_rx.close()
        back_tx.close()

    @classmethod
    def tearDownClass(cls):
        cls.to_tx.close()
        cls.echo.join(30)

    @SETTINGS
    @given(values)
    def test_a_value_arrives_as_pickle_gives_it_back(self, value):
        expected = pickle.loads(pickle.dumps(value, 5))
        self.tx.send(value)
        got = self.rx.recv(timeout=5)
        self.assertTrue(same(got, expected), f"{got!r} != {expected!r}")
        self.assertTrue(same(xchan._xchan._decode(xchan._xchan._encode(value)), expected))

    @SETTINGS
    @given(values)
    def test_through_another_interpreter_too(self, value):
        expected = pickle.loads(pickle.dumps(value, 5))
        self.to_tx.send(value)
        got = self.back_rx.recv(timeout=30)
        self.assertTrue(same(got, expected), f"{got!r} != {expected!r}")


class ChannelMachine(RuleBasedStateMachine):
    """A channel driven by random operations on several ends; the model: what each sender
    end sent (its id and a sequence number), what was received, which ends are open."""

    senders = Bundle("senders")
    receivers = Bundle("receivers")

    def __init__(self):
        super().__init__()
        self.tx, self.rx = xchan.channel(capacity=8)
        self.next_id = 0
        self.sent = {}          # sender id -> messages sent, in order
        self.received = set()
        self.last_seq = {}      # sender id -> last sequence number received
        self.open_receivers = 1

    @rule(target=senders)
    def first_sender(self):
        return self.register(self.tx)

    @rule(target=receivers)
    def first_receiver(self):
        return self.rx

    def register(self, end):
        self.next_id += 1
        self.sent[self.next_id] = []
        return (self.next_id, end)

    @rule(target=senders, sender=senders)
    def clone_sender(self, sender):
        if sender[1].closed:
            return sender
        return self.register(sender[1].clone())

    @rule(target=receivers, receiver=receivers)
    def clone_receiver(self, receiver):
        if receiver.closed:
            return receiver
        self.open_receivers += 1
        return receiver.clone()

    @rule(sender=senders, n=st.integers(1, 5))
    def send(self, sender, n):
        ident, end = sender
        for _ in range(n):
            message = (ident, len(self.sent[ident]))
            try:
                end.send_nowait(message)
            except xchan.ChannelFull:
                return
            except xchan.ChannelClosed:
                assert end.closed
                return
            self.sent[ident].append(message)

    @rule(sender=senders, batch=st.integers(1, 12))
    def send_many(self, sender, batch):
        ident, end = sender
        messages = [(ident, len(self.sent[ident]) + i) for i in range(batch)]
        try:
            went = end.send_many(messages, timeout=0)
        except (xchan.ChannelFull, xchan.ChannelClosed) as e:
            went = e.sent
        self.sent[ident].extend(messages[:went])

    @rule(receiver=receivers, many=st.booleans())
    def receive(self, receiver, many):
        try:
            got = receiver.recv_many(5, timeout=0) if many else [receiver.recv_nowait()]
        except xchan.ChannelEmpty:
            return
        except xchan.ChannelClosed:
            return
        for message in got:
            self.take(message)

    def take(self, message):
        ident, seq = message
        assert message not in self.received, f"duplicate {message}"
        assert seq > self.last_seq.get(ident, -1), f"out of order {message}"
        self.received.add(message)
        self.last_seq[ident] = seq

    @rule(sender=consumes(senders))
    def close_sender(self, sender):
        sender[1].close()

    @precondition(lambda self: self.open_receivers > 1)
    @rule(receiver=consumes(receivers))
    def close_receiver(self, receiver):
        if not receiver.closed:
            self.open_receivers -= 1
            receiver.close()

    @invariant()
    def nothing_invented(self):
        sent = {m for ms in self.sent.values() for m in ms}
        assert self.received <= sent

    def teardown(self):
        # Everything sent arrives exactly once at a receiver still open.
        drain = self.rx.clone() if not self.rx.closed else None
        if drain is not None:
            while True:
                try:
                    for message in drain.recv_many(100, timeout=0):
                        self.take(message)
                except (xchan.ChannelEmpty, xchan.ChannelClosed):
                    break
            sent = {m for ms in self.sent.values() for m in ms}
            assert self.received == sent, f"lost {sorted(sent - self.received)[:5]}"
            drain.close()


ChannelMachineTest = ChannelMachine.TestCase
ChannelMachineTest.settings = settings(max_examples=200, stateful_step_count=60, deadline=None, database=None)


if __name__ == "__main__":
    unittest.main()
