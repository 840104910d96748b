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


def fail(message):
    raise ValueError(message)


def send_ends_back(ctl):
    tx, rx = xchan.channel()
    ctl.send((tx, rx))
    tx.send("made in a worker")
    tx.close()


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
