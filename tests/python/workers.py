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
