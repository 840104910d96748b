"""xchan channels within one interpreter: every API call, the codec, and every error path.
Runs in the main interpreter and again inside an own-GIL subinterpreter."""
import importlib.util
import os
import pickle
import queue
import sys
import threading
import time
import unittest

import xchan
import workers



class Point:  # module level: picklable by reference
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)


class MyInt(int):
    pass


class Plain:
    """A plain class: instances travel natively (class by name, __dict__ as a dict)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __eq__(self, other):
        return type(other) is type(self) and vars(other) == vars(self)


class PlainChild(Plain):
    pass


class RestoresItself(Plain):
    def __setstate__(self, state):
        self.__dict__.update(state)
        self.restored = True


class CustomState(Plain):
    def __getstate__(self):
        return {"custom": True}


class Slotted:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __eq__(self, other):
        return type(other) is Slotted and other.a == self.a


class Registered(Plain):
    """copyreg.pickle() registers a reducer for it in the tests."""


def _rebuild_registered(marker):
    return Registered(marker=marker)


class Blob:
    """Pickles its data as an out-of-band buffer under protocol 5."""

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        return (Blob, (pickle.PickleBuffer(self.data),))


class Unpicklable:
    def __reduce__(self):
        raise TypeError("no pickling me")


class ClosesOnUnpickling:
    """Closes `ClosesOnUnpickling.end` when unpickled (Python code run inside recv())."""
    end = None

    def __reduce__(self):
        return (_close_on_arrival, ())


def _close_on_arrival():
    ClosesOnUnpickling.end.close()
    return "arrived"


def _break_on_arrival(message):
    raise ValueError(message)


class BreaksOnArrival:
    """Pickles fine; unpickling it raises ValueError (in the receiving interpreter)."""

    def __reduce__(self):
        return (_break_on_arrival, ("arrived broken",))


def _interrupt_once(key, exc_type):
    if InterruptedOnArrival.pending.pop(key, False):
        raise exc_type  # as a signal handler does when Ctrl-C comes during decoding
    return ("arrived", key)


class InterruptedOnArrival:
    """Decoding it raises `exc_type` the first time (a BaseException that is not an
    Exception: an interruption, not a broken message), then gives ("arrived", key)."""
    pending = {}

    def __init__(self, key, exc_type=KeyboardInterrupt):
        self.key, self.exc_type = key, exc_type
        InterruptedOnArrival.pending[key] = True

    def __reduce__(self):
        return (_interrupt_once, (self.key, self.exc_type))


class ClosesOnPickling:
    def __init__(self, end):
        self.end = end

    def __reduce__(self):
        self.end.close()
        return (str, ("never sent",))


def pickle_roundtrip(value):
    """What pickle gives back for `value` the way xchan pickles here: protocol 5, with
    out-of-band buffers (received as bytearrays) where xchan uses them."""
    if not xchan._xchan._out_of_band_pickle():
        return pickle.loads(pickle.dumps(value, 5))
    buffers = []
    data = pickle.dumps(value, 5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=[bytearray(b.raw()) for b in buffers])


def roundtrip(value, **kw):
    tx, rx = xchan.channel(**kw)
    tx.send(value)
    return rx.recv(timeout=5)


class CodecTest(unittest.TestCase):
    def test_native_values_arrive_equal_and_of_the_same_type(self):
        values = [b"", b"abc" * 100, "", "héllo \u2603", 0, -1, 2**63 - 1, -(2**63), 2**64, -(3**200),
                  0.0, -1.5, float("inf"), True, False, None, (), [], {},
                  (1, "a", [b"x", {"k": 2.0, 3: None}]), [[[[1]]]], {"nested": {"d": [1, (2,)]}}]
        for v in values:
            with self.subTest(v=repr(v)[:40]):
                got = roundtrip(v)
                self.assertEqual(got, v)
                self.assertIs(type(got), type(v))

    def test_encode_and_decode_are_inverse_and_decode_rejects_garbage(self):
        value = (1, "a", [b"x", {"k": 2.0, 3: None}], Point(1, 2))
        blob = xchan._xchan._encode(value)
        self.assertEqual(blob[:1], b"t")  # native: no pickle involved
        self.assertEqual(xchan._xchan._decode(blob), value)
        self.assertEqual(xchan._xchan._decode(memoryview(blob)), value)
        for bad in (b"", b"t\xff\xff\xff\xff", b"?", blob[:-1]):
            with self.subTest(bad=bad):
                with self.assertRaises(xchan.ChannelError):
                    xchan._xchan._decode(bad)
        with self.assertRaises(TypeError):
            xchan._xchan._decode("not bytes")

    def test_nan_roundtrips(self):
        got = roundtrip(float("nan"))
        self.assertNotEqual(got, got)

    def test_buffers_keep_their_type_and_memoryviews_arrive_as_bytes(self):
        import array
        for v in [bytearray(b"ba"), [bytearray(b"in a list")], array.array("i", [1, 2]), [array.array("d", [0.5])]]:
            with self.subTest(v=v):
                got = roundtrip(v)
                self.assertEqual(got, v)
                self.assertEqual(type(got), type(v))
                if isinstance(v, list):
                    self.assertIs(type(got[0]), type(v[0]))
        # A memoryview arrives as its bytes (documented): contiguous or not, alone or nested.
        for v in [memoryview(b"mv"), memoryview(b"abcdef")[::2], memoryview(array.array("h", [1, 2]))]:
            with self.subTest(v=v):
                got = roundtrip(v)
                self.assertIs(type(got), bytes)
                self.assertEqual(got, v.tobytes())
        self.assertEqual(roundtrip([memoryview(b"abcdef")[::2]]), [b"ace"])

    def test_plain_class_instances_travel_natively(self):
        values = [Plain(), Plain(a=1, b="x", c=[1.5, None], d={"k": (1, 2)}), PlainChild(x=Plain(y=2)),
                  Point(1, 2), [Point(0, 0), {"p": Point(3, 4)}]]
        for v in values:
            with self.subTest(v=repr(v)):
                self.assertNotIn(b"p", xchan._xchan._encode(v)[:1])  # not pickled
                self.assertIn(b"o", xchan._xchan._encode(v)[:80])
                got = roundtrip(v)
                self.assertEqual(got, v)
                self.assertIs(type(got), type(v))
        self.assertEqual(roundtrip(Point(1, 2)).__dict__, {"x": 1, "y": 2})

    def test_setstate_is_called_as_pickle_calls_it(self):
        got = roundtrip(RestoresItself(a=1))
        self.assertEqual(vars(got), {"a": 1, "restored": True})
        # An empty __dict__ is no state at all: pickle does not call __setstate__ then.
        self.assertEqual(vars(roundtrip(RestoresItself())), {})

    def test_classes_with_their_own_pickling_go_through_pickle(self):
        self.assertEqual(xchan._xchan._encode(CustomState(a=1))[:1], b"p")
        self.assertEqual(vars(roundtrip(CustomState(a=1))), {"custom": True})
        self.assertEqual(xchan._xchan._encode(Slotted(3))[:1], b"p")
        self.assertEqual(roundtrip(Slotted(3)), Slotted(3))
        import copyreg
        copyreg.pickle(Registered, lambda r: (_rebuild_registered, ("via copyreg",)))
        try:
            self.assertEqual(vars(roundtrip(Registered(a=1))), {"marker": "via copyreg"})
        finally:
            del copyreg.dispatch_table[Registered]
        self.assertEqual(vars(roundtrip(Registered(a=1))), {"a": 1})

    def test_a_class_changed_after_use_is_decided_again(self):
        class_ = type("Changing", (Plain,), {"__module__": __name__})
        globals()["Changing"] = class_
        try:
            self.assertEqual(xchan._xchan._encode(class_(a=1))[:1], b"o")
            class_.__reduce__ = lambda self: (_rebuild_registered, ("reduced",))
            self.assertEqual(vars(roundtrip(class_(a=1))), {"marker": "reduced"})
        finally:
            del globals()["Changing"]

    def test_shared_and_cyclic_instances(self):
        p = Plain(v=1)
        got = roundtrip([p, p])  # natively, each reference travels as its own copy
        self.assertEqual(got, [p, p])
        cyclic = Plain()
        cyclic.me = cyclic  # too deep for the native path: pickle keeps the cycle
        got = roundtrip(cyclic)
        self.assertIs(got.me, got)

    def test_send_many_with_items_changed_by_pickling_a_later_item(self):
        grows = [1, 2, 3]

        class Grower:
            def __reduce__(self):
                grows.extend(range(10_000))
                return (str, ("grower",))

        tx, rx = xchan.channel(max_bytes=1 << 20)
        tx.send_many([grows, Grower()])
        self.assertEqual(rx.recv_nowait(), [1, 2, 3] + list(range(10_000)))
        self.assertEqual(rx.recv_nowait(), "grower")

    def test_other_objects_go_through_pickle(self):
        for v in [{1, 2}, frozenset("ab"), MyInt(5), complex(1, 2), "\ud800"]:
            with self.subTest(v=repr(v)):
                got = roundtrip(v)
                self.assertEqual(got, v)
                self.assertIs(type(got), type(v))

    def test_pickle_out_of_band_buffers_travel_raw(self):
        # In-band, a read-only PickleBuffer unpickles as bytes; out of band, pickle wraps
        # the buffer xchan hands to pickle.loads in a read-only memoryview.
        got = roundtrip(Blob(b"x" * 100_000))
        self.assertIs(type(got), Blob)
        # In-band only in CPython 3.12 subinterpreters (a CPython bug; see module_state.hpp).
        expected = memoryview if xchan._xchan._out_of_band_pickle() else bytes
        self.assertIs(type(got.data), expected)
        self.assertEqual(got.data, b"x" * 100_000)

    def test_other_buffer_objects_arrive_as_pickle_gives_them_back(self):
        for v in [pickle.PickleBuffer(bytearray(b"pb")), pickle.PickleBuffer(b"ro")]:
            with self.subTest(v=v):
                got = roundtrip(v)
                expected = pickle_roundtrip(v)
                self.assertEqual((type(got), got), (type(expected), expected))

    def test_deep_nesting_falls_back_to_pickle(self):
        v = []
        for _ in range(100):
            v = [v]
        self.assertEqual(roundtrip(v), v)

    def test_unpicklable_object_raises_and_channel_stays_usable(self):
        tx, rx = xchan.channel()
        with self.assertRaises(TypeError):
            tx.send(Unpicklable())
        with self.assertRaises(Exception):
            tx.send(lambda: 1)
        tx.send("still fine")
        self.assertEqual(rx.recv_nowait(), "still fine")
        self.assertEqual(rx.qsize(), 0)


    def test_a_message_that_cannot_be_decoded_costs_its_batch_nothing_else(self):
        tx, rx = xchan.channel()
        tx.send_many([1, BreaksOnArrival(), "three", BreaksOnArrival(), 5])
        with self.assertRaises(ValueError) as cm:
            rx.recv_many(10)
        self.assertEqual(str(cm.exception), "arrived broken")  # the first failure
        self.assertEqual(cm.exception.received, [1, "three", 5])  # the rest, in order
        self.assertEqual(rx.qsize(), 0)
        tx.send(BreaksOnArrival())
        with self.assertRaises(ValueError):
            rx.recv(timeout=1)  # consumed and reported, as a single receive
        tx.send("after")
        self.assertEqual(rx.recv_nowait(), "after")

    def test_an_interruption_while_decoding_loses_no_message(self):
        # Ctrl-C (KeyboardInterrupt from the signal handler) or SystemExit while recv()
        # decodes: the message is taken already, so the end keeps it for the next receive.
        for exc_type in (KeyboardInterrupt, SystemExit):
            with self.subTest(exc_type.__name__):
                tx, rx = xchan.channel()
                tx.send_many([1, InterruptedOnArrival("a", exc_type), 3])
                tx.close()
                self.assertEqual(rx.recv(timeout=5), 1)
                with self.assertRaises(exc_type):
                    rx.recv(timeout=5)
                self.assertEqual(list(rx), [("arrived", "a"), 3])

    def test_an_interrupted_batch_is_received_whole_and_in_order_afterwards(self):
        tx, rx = xchan.channel()
        tx.send_many([1, "two", InterruptedOnArrival("b"), 4, InterruptedOnArrival("c"), 6])
        with self.assertRaises(KeyboardInterrupt):
            rx.recv_many(10)
        tx.send(7)
        self.assertEqual(rx.recv_many(2), [1, "two"])  # held messages come first...
        with self.assertRaises(KeyboardInterrupt):
            rx.recv_many(10)  # ...and the second interruption holds the rest again
        self.assertEqual(rx.recv_many(10), [("arrived", "b"), 4, ("arrived", "c"), 6])
        self.assertEqual(rx.recv(timeout=5), 7)  # then the channel
        self.assertEqual(rx.qsize(), 0)

    def test_a_message_closed_by_its_own_decoding_does_not_end_iteration(self):
        # ChannelClosed from unpickling a message (a stale end inside it) is that message's
        # error: the loop must not mistake it for the channel's end and stop silently.
        stale_end = pickle.dumps(xchan.channel()[0])
        pickle.loads(stale_end)  # an end unpickles at most once: these bytes are now stale

        class CarriesAStaleEnd:
            def __reduce__(self):
                return (pickle.loads, (stale_end,))

        tx, rx = xchan.channel()
        tx.send_many(["one", CarriesAStaleEnd(), "three"])
        it = iter(rx)
        self.assertEqual(next(it), "one")
        with self.assertRaises(xchan.ChannelClosed):
            next(it)
        tx.close()
        self.assertEqual(list(it), ["three"])


class _InterruptedImportFinder:
    """Imports `name` as a module holding `cls`, but the first attempt raises
    KeyboardInterrupt, as if Ctrl-C came while the module was being imported."""

    def __init__(self, name, cls):
        self.name, self.cls, self.attempts = name, cls, 0

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        self.attempts += 1
        if self.attempts == 1:
            raise KeyboardInterrupt
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        setattr(module, self.cls.__qualname__, self.cls)


class CodecHygieneTest(unittest.TestCase):
    def _class_whose_lookup_runs(self, action):
        """A fresh class that xchan resolves by name as getattr(<namespace>, "C"), where
        the namespace's __getattr__ runs `action` first: Python code in the middle of
        sizing a message."""
        class Namespace:
            def __getattr__(self, name):
                action()
                return cls
        cls = type("C", (), {"__module__": __name__, "__qualname__": f"_ns_{id(action)}.C"})
        globals()[f"_ns_{id(action)}"] = Namespace()
        self.addCleanup(globals().pop, f"_ns_{id(action)}")
        return cls

    def test_a_container_changed_by_code_run_while_sizing_it_is_never_torn(self):
        # Resolving a class by name runs Python code, which may change the very container
        # being sized: it must arrive as it was before or as it is after, never torn.
        for name, make, change in [
            ("list cleared", lambda c: [c()] + [str(i) * 50 for i in range(500)], lambda v: v.clear()),
            ("list refilled", lambda c: [c()] + [(i, [i]) for i in range(500)], lambda v: v.__setitem__(slice(None), [b"x"] * 3)),
            ("dict cleared", lambda c: {"k": c(), **{str(i): [i] * 20 for i in range(500)}}, lambda v: v.clear()),
            ("dict key cleared", lambda c: {(c(),): "v", **{str(i): [i] for i in range(500)}}, lambda v: v.clear()),
        ]:
            with self.subTest(name):
                victim = None
                cls = self._class_whose_lookup_runs(lambda: change(victim))
                victim = make(cls)
                before = [type(x) for x in victim]  # (pickle would resolve the class too)
                tx, rx = xchan.channel()
                tx.send(victim)
                got = rx.recv(timeout=5)
                if got != victim:  # then it arrived as it was before the change
                    self.assertEqual([type(x) for x in got], before)

    def test_the_class_cache_does_not_keep_classes_alive(self):
        import gc
        import types
        import weakref
        module = types.ModuleType("xchan_test_transient")
        cls = type("Transient", (), {"__module__": module.__name__})
        module.Transient = cls
        sys.modules[module.__name__] = module
        try:
            got = roundtrip(cls())
            self.assertIs(type(got), cls)
            self.assertEqual(xchan._xchan._encode(cls())[:1], b"o")  # the native path cached it
        finally:
            del sys.modules[module.__name__]
        ref = weakref.ref(cls)
        del cls, got, module
        gc.collect()
        self.assertIsNone(ref(), "the class outlived every reference but xchan's caches")

    def test_a_class_redefined_under_the_same_name_is_noticed(self):
        # As by pickle, which looks the name up every time (a re-run notebook cell,
        # importlib.reload): instances of the new class arrive as the new class, and an
        # instance of the old one is refused, as pickle refuses it.
        import types
        module = types.ModuleType("xchan_test_redefined")
        sys.modules[module.__name__] = module
        self.addCleanup(sys.modules.pop, module.__name__)

        def define(label):
            cls = type("Point", (), {"__module__": module.__name__, "label": label})
            module.Point = cls
            return cls

        old = define("old")
        tx, rx = xchan.channel()
        tx.send(old())
        self.assertIs(type(rx.recv(timeout=5)), old)  # both sides have it cached now
        new = define("new")
        tx.send(new())
        self.assertIs(type(rx.recv(timeout=5)), new)
        with self.assertRaises(pickle.PicklingError):
            tx.send(old())
        self.assertEqual(rx.qsize(), 0)

        class Outer:
            class Inner:
                pass
        module.Outer = Outer
        Outer.__module__ = Outer.Inner.__module__ = module.__name__
        Outer.__qualname__, Outer.Inner.__qualname__ = "Outer", "Outer.Inner"
        first = Outer.Inner
        tx.send(first())
        self.assertIs(type(rx.recv(timeout=5)), first)
        Outer.Inner = type("Inner", (), {"__module__": module.__name__, "__qualname__": "Outer.Inner"})
        tx.send(Outer.Inner())
        self.assertIs(type(rx.recv(timeout=5)), Outer.Inner)

    def test_ctrl_c_while_a_class_module_is_imported_is_not_swallowed(self):
        name = f"xchan_test_interrupted_{id(self)}"
        cls = type("Late", (), {"__module__": name})
        finder = _InterruptedImportFinder(name, cls)
        sys.meta_path.insert(0, finder)
        try:
            tx, rx = xchan.channel()
            with self.assertRaises(KeyboardInterrupt):
                tx.send(cls())
            self.assertEqual(rx.qsize(), 0)
            tx.send(cls())  # the next attempt imports it
            self.assertIs(type(rx.recv(timeout=5)), cls)
        finally:
            sys.meta_path.remove(finder)
            sys.modules.pop(name, None)

    def test_malformed_pickled_messages_leak_nothing(self):
        blob = xchan._xchan._encode({1, 2, 3})
        self.assertEqual(blob[:1], b"p")
        bad = [blob[:-1], blob[:5], b"p\x01\x00\x00\x00" + (1 << 40).to_bytes(8, "little")]

        def decode_all(rounds):
            for _ in range(rounds):
                for b in bad:
                    with self.assertRaises(xchan.ChannelError):
                        xchan._xchan._decode(b)

        decode_all(200)
        before = sys.getallocatedblocks()  # (tracemalloc cannot load in subinterpreters)
        decode_all(5000)
        self.assertLess(sys.getallocatedblocks() - before, 500)


class ChannelApiTest(unittest.TestCase):
    def test_channel_validates_its_arguments(self):
        with self.assertRaises(ValueError):
            xchan.channel(capacity=0)
        with self.assertRaises(ValueError):
            xchan.channel(max_bytes=-1)
        with self.assertRaises(TypeError):
            xchan.channel(capacity="10")
        with self.assertRaises(TypeError):
            xchan.channel(10)  # keyword-only
        with self.assertRaises(ValueError):
            xchan.channel(max_bytes=1 << 50)

    def test_objects_explain_themselves(self):
        import inspect
        import weakref
        tx, rx = xchan.channel()
        tx.send_many([1, 2])
        cid = tx._channel_id
        self.assertEqual(repr(tx), f"<xchan.Sender channel={cid} open queued=2>")
        self.assertEqual(repr(rx), f"<xchan.Receiver channel={cid} open queued=2>")
        rx.close()
        self.assertEqual(repr(rx), "<xchan.Receiver closed>")
        ref = weakref.ref(tx)
        self.assertIs(ref(), tx)
        del tx
        self.assertIsNone(ref())
        self.assertRegex(xchan.__version__, r"^\d+\.\d+\.\d+")
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "meson.build")) as f:
            self.assertIn(f"version: '{xchan.__version__}'", f.read())  # one source of truth
        signatures = {
            xchan.channel: "(*, capacity=1024, max_bytes=67108864, shared=False)",
            xchan.max_message_for: "(max_bytes, /)",
            xchan.spawn: "(fn, *args, isolate='interpreter', daemon=False)",
            xchan.Sender.send: "(self, /, obj, timeout=None)",
            xchan.Sender.send_many: "(self, /, items, timeout=None)",
            xchan.Receiver.recv: "(self, /, timeout=None)",
            xchan.Receiver.recv_many: "(self, /, max_items=1024, timeout=None)",
            xchan.Worker.join: "(self, /, timeout=None)",
        }
        for f, expected in signatures.items():
            with self.subTest(f=f.__qualname__):
                self.assertEqual(str(inspect.signature(f)), expected)
        w = xchan.spawn(workers.noop)
        self.assertRegex(repr(w), r"^<xchan\.Worker workers\.noop (running|finished)>$")
        w.join()

    def test_sizes_are_checked_alike_with_a_message(self):
        for bad in ("1", 1.5, None, True, 0, -1, 2**40 + 1, 2**70, -(2**70)):
            with self.subTest(max_bytes=bad):
                with self.assertRaises((TypeError, ValueError)) as made:
                    xchan.channel(max_bytes=bad)
                with self.assertRaises((TypeError, ValueError)) as asked:
                    xchan.max_message_for(bad)
                self.assertIs(type(made.exception), type(asked.exception))
                self.assertEqual(str(made.exception), str(asked.exception))
                self.assertIn("max_bytes", str(made.exception))
        for bad in ("1", True, 0, 2**40 + 1):
            with self.subTest(capacity=bad):
                with self.assertRaises((TypeError, ValueError)) as cm:
                    xchan.channel(capacity=bad)
                self.assertIn("capacity", str(cm.exception))
        for max_bytes, buffer in ((1, 4096), (4096, 4096), (5000, 8192), (1 << 20, 1 << 20)):
            with self.subTest(max_bytes=max_bytes):
                tx, rx = xchan.channel(max_bytes=max_bytes)
                self.assertEqual(tx.stats()["max_bytes"], buffer)  # rounded up to a power of two, >= 4096
                self.assertEqual(tx.stats()["max_message"], xchan.max_message_for(max_bytes))
                self.assertEqual(xchan.max_message_for(max_bytes), buffer // 2 - 13)

    def test_ends_cannot_be_instantiated_directly(self):
        with self.assertRaises(TypeError):
            xchan.Sender()

    def test_exceptions_form_the_documented_hierarchy(self):
        self.assertTrue(issubclass(xchan.ChannelEmpty, queue.Empty))
        self.assertTrue(issubclass(xchan.ChannelFull, queue.Full))
        for e in (xchan.ChannelEmpty, xchan.ChannelFull, xchan.ChannelClosed, xchan.WorkerError):
            self.assertTrue(issubclass(e, xchan.ChannelError))
        self.assertTrue(issubclass(xchan.PeerDied, xchan.ChannelClosed))

    def test_nowait_calls(self):
        tx, rx = xchan.channel(capacity=2)
        with self.assertRaises(xchan.ChannelEmpty):
            rx.recv_nowait()
        tx.send_nowait(1)
        tx.send_nowait(2)
        with self.assertRaises(xchan.ChannelFull):
            tx.send_nowait(3)
        self.assertEqual([rx.recv_nowait(), rx.recv_nowait()], [1, 2])

    def test_timeouts(self):
        tx, rx = xchan.channel(capacity=1)
        t0 = time.monotonic()
        with self.assertRaises(xchan.ChannelEmpty):
            rx.recv(timeout=0)
        with self.assertRaises(xchan.ChannelEmpty):
            rx.recv(timeout=0.05)
        self.assertGreaterEqual(time.monotonic() - t0, 0.05)
        tx.send(1, timeout=0)
        with self.assertRaises(xchan.ChannelFull):
            tx.send(2, timeout=0.02)
        with self.assertRaises(xchan.ChannelFull):
            tx.send(2, 0)  # positional timeout
        self.assertEqual(rx.recv(0), 1)

    def test_bad_timeouts_are_rejected_without_side_effects(self):
        tx, rx = xchan.channel()
        for bad in (-1, -0.001, float("nan")):
            with self.assertRaises(ValueError):
                rx.recv(timeout=bad)
            with self.assertRaises(ValueError):
                tx.send("x", timeout=bad)
        for bad in ("1", [1], object()):
            with self.assertRaises(TypeError):
                rx.recv(timeout=bad)
        self.assertEqual(rx.qsize(), 0)
        with self.assertRaises(TypeError):
            rx.recv(bogus=1)
        with self.assertRaises(TypeError):
            tx.send()

    def test_oversized_message_raises_value_error_and_channel_stays_usable(self):
        tx, rx = xchan.channel(max_bytes=4096)
        limit = xchan.max_message_for(4096)
        self.assertEqual(tx.stats()["max_message"], limit)
        with self.assertRaises(ValueError):
            tx.send(b"x" * 5000)
        with self.assertRaises(ValueError):
            tx.send(b"x" * 5000, timeout=None)  # never waits for room it can never have
        tx.send(b"y" * limit)  # max_message is the largest bytes (or str) that fits
        self.assertEqual(len(rx.recv()), limit)
        with self.assertRaises(ValueError):
            tx.send(b"y" * (limit + 1))
        tx.send("z" * limit)
        self.assertEqual(len(rx.recv()), limit)

    def test_a_burst_after_a_drain_fills_the_whole_buffer(self):
        # One thread sends everything before it receives. The ring wraps early at its first
        # 256 KiB boundary, which holds the room past the wrap until the receiver passes it;
        # the sender takes it back (stats: wraps_undone) instead of stopping at ~256 KiB.
        for send in ("nowait", "blocking"):
            with self.subTest(send=send):
                tx, rx = xchan.channel(capacity=1 << 20, max_bytes=4 << 20)
                tx.send(b"x" * 1000)
                rx.recv()
                sent = 0
                try:
                    while True:
                        if send == "nowait":
                            tx.send_nowait(b"y" * 64)
                        else:
                            tx.send(b"y" * 64, timeout=0.05)
                        sent += 1
                except xchan.ChannelFull:
                    pass
                self.assertGreaterEqual(sent * 80 + 2 * 80, 4 << 20)  # records are 80 bytes
                self.assertEqual(tx.stats()["wraps_undone"], 1)
                got = rx.recv_many(sent)
                self.assertEqual(len(got), sent)
                self.assertEqual(set(got), {b"y" * 64})

    def test_stats_high_water(self):
        tx, rx = xchan.channel(capacity=8)
        self.assertEqual(tx.stats()["high_water"], 0)
        for i in range(8):
            tx.send_nowait(i)
        with self.assertRaises(xchan.ChannelFull):
            tx.send_nowait(8)
        self.assertEqual(rx.recv_many(8), list(range(8)))
        s = rx.stats()
        self.assertEqual(s["high_water"], 8)  # exact: the channel filled up
        self.assertGreaterEqual(s["high_water_bytes"], 8 * 16)
        tx.send(1)
        self.assertEqual(tx.stats()["high_water"], 8)  # never falls

    def test_stats_count_the_messages_not_the_room_a_wrap_skips(self):
        tx, rx = xchan.channel(capacity=1 << 20, max_bytes=64 << 20)
        message = b"x" * 27  # 32 bytes encoded: a 40-byte record
        peak = 0
        for i in range(20_000):  # 800 KB of traffic: the ring wraps early at 256 KiB windows
            tx.send(message)
            if i >= 255:
                rx.recv()
            s = tx.stats()
            self.assertEqual(s["queued_bytes"], s["queued"] * 40)
            peak = max(peak, s["queued"])
        self.assertEqual(peak, 255)  # looked at after each receive
        s = tx.stats()
        self.assertEqual((s["queued"], s["queued_bytes"]), (255, 255 * 40))
        self.assertEqual((s["high_water"], s["high_water_bytes"]), (256, 256 * 40))

    def test_high_water_is_exact_after_many_fills(self):
        tx, rx = xchan.channel(capacity=8)
        for _ in range(2000):
            self.assertEqual(tx.send_many(range(8)), 8)
            self.assertEqual(rx.recv_many(8), list(range(8)))
        s = rx.stats()
        self.assertEqual((s["high_water"], s["high_water_bytes"]), (8, 8 * 24))  # 9-byte ints: 24-byte records
        self.assertEqual((s["queued"], s["queued_bytes"]), (0, 0))

    def test_send_many_and_recv_many(self):
        tx, rx = xchan.channel(capacity=64)
        self.assertEqual(tx.send_many(range(10)), 10)
        self.assertEqual(tx.send_many(iter(["a", b"b", Point(1, 1)])), 3)
        self.assertEqual(rx.recv_many(5), [0, 1, 2, 3, 4])
        self.assertEqual(rx.recv_many(), [5, 6, 7, 8, 9, "a", b"b", Point(1, 1)])
        with self.assertRaises(xchan.ChannelEmpty):
            rx.recv_many(timeout=0)
        with self.assertRaises(ValueError):
            rx.recv_many(0)
        with self.assertRaises(TypeError):
            tx.send_many(5)

    def test_send_many_says_exactly_what_went_on_every_error(self):
        def broken_generator():
            yield from range(3)
            raise RuntimeError("the source broke")

        too_big = b"x" * 20_000  # the channel below takes at most 8179 bytes
        cases = [
            ("oversized item", [1, 2, too_big, 4], ValueError, [1, 2]),
            ("unpicklable item", [1, Unpicklable(), 3], TypeError, [1]),
            ("iterator raising midway", broken_generator(), RuntimeError, [0, 1, 2]),
            ("bad item past the first chunk", list(range(600)) + [too_big] + [1], ValueError, list(range(600))),
            ("not an iterable", 5, TypeError, []),
        ]
        for name, items, error, arrived in cases:
            with self.subTest(case=name):
                tx, rx = xchan.channel(capacity=4096, max_bytes=4096 * 4)
                with self.assertRaises(error) as cm:
                    tx.send_many(items)
                self.assertEqual(cm.exception.sent, len(arrived))
                got = rx.recv_many(10_000, timeout=0) if arrived else []
                self.assertEqual(got, arrived)
                self.assertEqual(rx.qsize(), 0)  # none after the failure
        tx, rx = xchan.channel()
        rx.close()
        with self.assertRaises(xchan.ChannelClosed) as cm:
            tx.send_many([1, 2])
        self.assertEqual(cm.exception.sent, 0)
        tx.close()
        with self.assertRaises(xchan.ChannelClosed) as cm:
            tx.send_many([1, 2])
        self.assertEqual(cm.exception.sent, 0)

    def test_send_many_reports_a_partial_batch(self):
        tx, rx = xchan.channel(capacity=3)
        with self.assertRaises(xchan.ChannelFull) as cm:
            tx.send_many(range(5), timeout=0.01)
        self.assertEqual(cm.exception.sent, 3)
        self.assertEqual(rx.recv_many(), [0, 1, 2])

    def test_disconnect_when_all_senders_close(self):
        tx, rx = xchan.channel()
        tx2 = tx.clone()
        tx.send(1)
        tx.close()
        tx2.send(2)
        del tx2  # garbage collection closes it
        self.assertEqual(rx.recv(), 1)
        self.assertEqual(rx.recv(), 2)
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv()
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv_nowait()

    def test_disconnect_when_all_receivers_close(self):
        tx, rx = xchan.channel()
        rx2 = rx.clone()
        rx.close()
        tx.send(1)
        rx2.close()
        with self.assertRaises(xchan.ChannelClosed):
            tx.send(2)

    def test_closed_handles(self):
        tx, rx = xchan.channel()
        self.assertFalse(tx.closed)
        tx.close()
        tx.close()
        self.assertTrue(tx.closed)
        for call in (lambda: tx.send(1), tx.clone, tx.stats, lambda: pickle.dumps(tx)):
            with self.assertRaises(xchan.ChannelClosed):
                call()

    def test_end_closed_by_the_objects_being_sent_raises_closed_and_sends_nothing(self):
        for send in (lambda tx: tx.send(ClosesOnPickling(tx)),
                     lambda tx: tx.send_many([1, ClosesOnPickling(tx), 2])):
            tx, rx = xchan.channel()
            keep = tx.clone()  # so that the receiver does not see a disconnect
            with self.assertRaises(xchan.ChannelClosed):
                send(tx)
            self.assertTrue(tx.closed)
            self.assertEqual(rx.stats()["sent"], 0)
            self.assertEqual(rx.stats()["senders"], 1)
            keep.send("still usable")
            self.assertEqual(rx.recv_nowait(), "still usable")

    def test_end_closed_while_receiving_closes_once_the_call_is_done(self):
        for recv in (lambda rx: rx.recv(timeout=5), lambda rx: rx.recv_many(timeout=5)[0]):
            tx, rx = xchan.channel()
            ClosesOnUnpickling.end = rx
            tx.send(ClosesOnUnpickling())
            self.assertEqual(recv(rx), "arrived")
            self.assertTrue(rx.closed)
            self.assertEqual(tx.stats()["receivers"], 0)
            with self.assertRaises(xchan.ChannelClosed):
                tx.send(1)
        ClosesOnUnpickling.end = None

    def test_context_managers_close(self):
        with xchan.channel()[0] as tx:
            self.assertFalse(tx.closed)
        self.assertTrue(tx.closed)

    def test_iteration_ends_when_senders_are_gone(self):
        tx, rx = xchan.channel()
        tx.send_many([1, 2, 3])
        tx.close()
        self.assertEqual(list(rx), [1, 2, 3])

    def test_stats(self):
        tx, rx = xchan.channel(capacity=8, max_bytes=8192)
        tx.send_many([b"a", b"b"])
        rx.recv()
        s = rx.stats()
        self.assertEqual((s["sent"], s["received"], s["queued"]), (2, 1, 1))
        self.assertEqual((s["capacity"], s["max_bytes"], s["senders"], s["receivers"]), (8, 8192, 1, 1))
        self.assertEqual(s["parked_receivers"], 0)
        self.assertEqual(tx.qsize(), 1)

    def test_blocking_recv_is_woken_by_another_thread_and_reports_parked_waiters(self):
        tx, rx = xchan.channel()
        got = []
        t = threading.Thread(target=lambda: got.append(rx.recv(timeout=10)))
        t.start()
        deadline = time.monotonic() + 5
        while tx.stats()["parked_receivers"] == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        self.assertEqual(tx.stats()["parked_receivers"], 1)
        tx.send("wake")
        t.join(10)
        self.assertEqual(got, ["wake"])

    def test_close_wakes_a_blocked_receiver_promptly(self):
        tx, rx = xchan.channel()
        errors = []

        def wait():
            try:
                rx.recv(timeout=10)
            except xchan.ChannelClosed as e:
                errors.append(e)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        tx.close()
        t.join(10)
        self.assertEqual(len(errors), 1)
        self.assertLess(time.monotonic() - t0, 2)

    def test_pickled_end_reattaches_and_keeps_the_channel_open_in_transit(self):
        tx, rx = xchan.channel()
        data = pickle.dumps(tx)
        tx.close()  # the pickled end is still an open sender
        tx2 = pickle.loads(data)
        tx2.send("hi")
        tx2.close()
        self.assertEqual(rx.recv(), "hi")
        with self.assertRaises(xchan.ChannelClosed):
            rx.recv()

    def test_ends_travel_over_channels(self):
        ctl_tx, ctl_rx = xchan.channel()
        tx, rx = xchan.channel()
        ctl_tx.send((tx, rx))
        del tx
        tx_b, rx_b = ctl_rx.recv()
        tx_b.send(42)
        self.assertEqual(rx.recv(), 42)
        self.assertEqual(rx_b.recv_nowait() if rx_b.qsize() else None, None)


class QueueTest(unittest.TestCase):
    def test_pep734_api(self):
        q = xchan.Queue(maxsize=2)
        self.assertEqual(q.maxsize, 2)
        self.assertTrue(q.empty())
        q.put(1)
        q.put_nowait("two")
        self.assertTrue(q.full())
        with self.assertRaises(xchan.QueueFull):
            q.put_nowait(3)
        with self.assertRaises(xchan.QueueFull):
            q.put(3, block=False)
        with self.assertRaises(queue.Full):
            q.put(3, timeout=0.01)
        with self.assertRaises(queue.Full):
            q.put(3, True, 0.01)  # put(obj, block, timeout), as in 3.14
        self.assertEqual(q.qsize(), 2)
        self.assertEqual(q.get(), 1)
        self.assertEqual(q.get_nowait(), "two")
        with self.assertRaises(xchan.QueueEmpty):
            q.get_nowait()
        with self.assertRaises(xchan.QueueEmpty):
            q.get(False)  # get(block, timeout): not "a timeout of 0 seconds"
        with self.assertRaises(queue.Empty):
            q.get(True, 0.01)
        with self.assertRaises(TypeError):
            q.get(timeout=True)  # a bool is not a timeout, anywhere in the API
        with self.assertRaises(TypeError):
            xchan.channel()[1].recv(True)
        q.put("x", unbounditems=None)  # accepted; items are always delivered
        self.assertEqual(q.get(block=True, timeout=1), "x")

    def test_maxsize_as_in_queue_and_pep_734(self):
        for maxsize in (0, -1, -10):
            with self.subTest(maxsize=maxsize):
                q = xchan.Queue(maxsize)
                self.assertEqual(q.maxsize, maxsize)
                for i in range(2000):
                    q.put_nowait(i)  # unbounded: never full
                self.assertFalse(q.full())
                self.assertEqual(q.qsize(), 2000)
        self.assertEqual(xchan.create_queue().maxsize, -1)
        for bad in ("1", 1.5, None, True):
            with self.subTest(bad=bad):
                with self.assertRaises(TypeError):
                    xchan.Queue(bad)

    def test_copies_compare_equal_and_hash_by_id(self):
        q = xchan.Queue(3)
        other = xchan.Queue(3)
        copy = pickle.loads(pickle.dumps(q))
        self.assertEqual(copy, q)
        self.assertEqual(hash(copy), hash(q))
        self.assertEqual(hash(q), hash(q.id))
        self.assertNotEqual(q, other)
        self.assertEqual({q: "found"}[copy], "found")
        self.assertEqual(copy.maxsize, 3)
        self.assertEqual(xchan.Queue.from_id(q.id), q)
        self.assertEqual(xchan.Queue.from_id(q.id).maxsize, 3)
        with self.assertRaises(xchan.QueueNotFoundError):
            xchan.Queue.from_id(10**12)
        with self.assertRaises(AttributeError):
            q.id = 5

    def test_unbounded_queue_and_pickled_copies_share_items(self):
        q = xchan.Queue()
        self.assertFalse(q.full())
        q2 = pickle.loads(pickle.dumps(q))
        q2.put(Point(1, 2))
        self.assertEqual(q.get(timeout=1), Point(1, 2))


if __name__ == "__main__":
    unittest.main()
