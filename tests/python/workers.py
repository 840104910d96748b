"""Functions run by xchan.spawn in the tests (importable by module and qualified name)."""
import xchan


def produce(tx, worker_id, count):
    for seq in range(count):
        tx.send((worker_id, seq, b"p" * (seq % 50)))
    tx.close()


def square_all(rx, results):
    for n in rx:
        results.send(n * n)


def echo(rx, tx):
    for item in rx:
        tx.send(item)


def use_queue(q, n):
    for i in range(n):
        q.put(("q", i))


def fill_and_report(q, out):
    for i in range(q.maxsize):
        q.put(i)
    out.send([q.get() for _ in range(q.maxsize)])


def fail(message):
    raise ValueError(message)


def send_ends_back(ctl, ack=None):
    """Sends a new channel's ends back; with `ack`, waits until the parent has them (an end
    pickled here is closed when this interpreter ends, if nobody unpickled it by then)."""
    tx, rx = xchan.channel()
    ctl.send((tx, rx))
    tx.send("made in a worker")
    tx.close()
    if ack is not None:
        ack.recv(timeout=30)


def report_imports(out):
    """What a worker imported to run: (pickle loaded, queue loaded), then whether the
    ChannelFull it raises on a full channel (made on first use) is a queue.Full."""
    import sys
    loaded = ("pickle" in sys.modules, "queue" in sys.modules)
    tx, rx = xchan.channel(capacity=1)
    tx.send_nowait(1)
    try:
        tx.send_nowait(2)
        full_is_queue_full = None
    except xchan.ChannelFull as e:
        import queue
        full_is_queue_full = isinstance(e, queue.Full) and xchan.ChannelFull is xchan._xchan.ChannelFull
    out.send((loaded, full_is_queue_full))


def send_back(out, *values):
    out.send(values)


def send_type_back(out, value):
    out.send(f"{type(value).__name__} of {type(value[0]).__name__}")


def burst(tx, out):
    """Sends 64-byte messages without waiting until the channel is full; reports how many
    went and how many wraps the channel undid to take them."""
    sent = 0
    try:
        while True:
            tx.send_nowait(sent.to_bytes(8, "little") * 8)
            sent += 1
    except xchan.ChannelFull:
        pass
    out.send((sent, tx.stats()["wraps_undone"]))


class Record:
    """A plain class: its instances travel natively (class by name, __dict__ as state)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return f"Record({self.__dict__!r})"


def race_helper(ctl, out):
    """Takes part in the close-race stress rounds: ("drain", rx) receives until the round's
    senders are gone and reports what it got; ("fill", tx, n) sends 0..n-1 and closes."""
    for command in ctl:
        if command[0] == "drain":
            rx = command[1]
            out.send(list(rx))
            rx.close()
        else:
            tx, n = command[1], command[2]
            for i in range(n):
                tx.send(i, timeout=30)
            tx.close()
            out.send("filled")


def spin():
    """Runs Python code until something stops it (an exception raised in it)."""
    n = 0
    while True:
        n += 1


def sleep_in_c():
    """Blocks in C code for long: nothing raised in it is seen before that ends."""
    import time
    time.sleep(3600)


def fail_later(delay, message):
    import time
    time.sleep(delay)
    raise ValueError(message)


class Failure(Exception):
    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


def fail_with(detail):
    raise Failure(detail)


class UnpicklableError(Exception):
    def __reduce__(self):
        raise TypeError("this exception does not pickle")


def fail_unpicklably():
    raise UnpicklableError("no way back")


def exit_with(code):
    import sys
    sys.exit(code)


def noop(*args):
    pass


def receive_one(rx, out):
    """Receives one message and reports its type's name (or what receiving raised)."""
    try:
        out.send(type(rx.recv(timeout=30)).__name__)
    except Exception as e:
        out.send(f"{type(e).__name__}: {e}")
