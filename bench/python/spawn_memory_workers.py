"""Worker functions for bench/python/spawn_memory.py. They live in their own module so
xchan.spawn finds them by name and never re-runs the benchmark script in a worker."""


def noop():
    """Does nothing: the spawn/join cost alone."""


def send_one(tx):
    """Sends one small message on a channel end it received as an argument."""
    tx.send(b"x")
