"""Worker-side functions and types for bench/python/compare.py (importable by xchan.spawn
and by subinterpreters, so pickled instances resolve on both sides)."""


class Record:
    """A small user-class instance: the "pickled instance" case."""

    def __init__(self):
        self.a, self.b, self.name, self.tags = 1, 2.5, "record", ("x", "y")


def sink(rx, done, n, batch):
    """Receives n messages (in batches if `batch`), then reports the count."""
    done.send("ready")
    count = 0
    if batch:
        while count < n:
            count += len(rx.recv_many(batch))
    else:
        recv = rx.recv
        for _ in range(n):
            recv()
            count += 1
    done.send(count)


def echo(rx, tx):
    for msg in rx:
        tx.send(msg)


def factorial(n, out):
    import math
    math.factorial(n)
    out.send(n)
