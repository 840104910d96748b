"""Third-party peers for bench/python/compare.py, each measured for what it is built for:
faster-fifo (a shared-memory queue between processes; between threads too), pyzmq (inproc
sockets between threads, ipc sockets between processes) and the PEP 734 backport
(backports.interpreters: Queue between interpreters). Each throughput function sends `n`
copies of `payload` to a consumer and returns the seconds until the consumer has them
all; each round-trip function returns per-message samples in seconds.

A peer that cannot be imported, or cannot do a case, is reported by `unavailable()` with
the reason, so that the table says so instead of dropping the row.
"""
import importlib
import multiprocessing as mp
import pickle
import threading
import time

now = time.perf_counter
CTX = mp.get_context("fork")

# What the peers named in issue 13 need that this machine may not give; pinned in
# requirements/bench.txt where they install.
NOT_INSTALLABLE = {
    "ringbuf": "ringbuf 2.6.0 does not build here: its wheel links -lboost_system, which Debian's "
               "libboost-dev does not provide (a header-only Boost.System)",
    "spsc-ring-threadsafe": "no distribution of that name on PyPI",
}


def unavailable(module):
    """None if `module` imports, else why not (for the table)."""
    try:
        importlib.import_module(module)
        return None
    except Exception as e:  # ImportError, or a peer that fails while importing
        return f"cannot import {module}: {type(e).__name__}: {e}"


def versions():
    """The installed version of each peer (for the report)."""
    from importlib import metadata
    out = {}
    for dist in ("faster-fifo", "pyzmq", "backports.interpreters"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _size_limit(payload, n):
    """A queue bound in bytes that holds the whole run (peers with byte-bounded queues)."""
    return max(64 << 20, 4 * (len(payload) if isinstance(payload, bytes) else len(pickle.dumps(payload))) + (1 << 20))


# ---- faster-fifo ----------------------------------------------------------------------

def _ff_consume(q, done, n):
    done.put("ready")
    got = 0
    while got < n:
        got += len(q.get_many(max_messages_to_get=1024, timeout=10))
    done.put("done")


def faster_fifo_processes(payload, n):
    import faster_fifo
    q = faster_fifo.Queue(max_size_bytes=_size_limit(payload, n))
    done = faster_fifo.Queue(max_size_bytes=1 << 16)
    p = CTX.Process(target=_ff_consume, args=(q, done, n))
    p.start()
    done.get(timeout=30)
    t0 = now()
    put = q.put
    for _ in range(n):
        put(payload, timeout=30)
    done.get(timeout=600)
    dt = now() - t0
    p.join()
    return dt


def faster_fifo_threads(payload, n):
    import faster_fifo
    q = faster_fifo.Queue(max_size_bytes=_size_limit(payload, n))
    t = threading.Thread(target=lambda: _ff_thread_consume(q, n))
    t0 = now()
    t.start()
    put = q.put
    for _ in range(n):
        put(payload, timeout=30)
    t.join()
    return now() - t0


def _ff_thread_consume(q, n):
    got = 0
    while got < n:
        got += len(q.get_many(max_messages_to_get=1024, timeout=10))


def _ff_echo(a, b):
    while (msg := a.get(timeout=60)) is not None:
        b.put(msg, timeout=60)


def faster_fifo_rtt(n, pause):
    import faster_fifo
    a, b = faster_fifo.Queue(max_size_bytes=1 << 20), faster_fifo.Queue(max_size_bytes=1 << 20)
    p = CTX.Process(target=_ff_echo, args=(a, b))
    p.start()
    samples = round_trips(lambda m: a.put(m), lambda: b.get(timeout=60), n, pause)
    a.put(None)
    p.join()
    return samples


# ---- pyzmq ----------------------------------------------------------------------------

def _zmq_pair(ctx, address):
    import zmq
    a = ctx.socket(zmq.PAIR)
    a.setsockopt(zmq.SNDHWM, 0)
    a.bind(address)
    return a


def zmq_inproc_threads(payload, n):
    import zmq
    raw = isinstance(payload, bytes)
    ctx = zmq.Context()
    a = _zmq_pair(ctx, "inproc://xchan-bench")
    b = ctx.socket(zmq.PAIR)
    b.setsockopt(zmq.RCVHWM, 0)
    b.connect("inproc://xchan-bench")

    def consume():
        recv = b.recv if raw else b.recv_pyobj
        for _ in range(n):
            recv()

    t = threading.Thread(target=consume)
    t0 = now()
    t.start()
    send = a.send if raw else a.send_pyobj
    for _ in range(n):
        send(payload)
    t.join()
    dt = now() - t0
    a.close()
    b.close()
    ctx.term()
    return dt


def _zmq_ipc_consume(address, n, raw):
    import zmq
    ctx = zmq.Context()
    b = ctx.socket(zmq.PAIR)
    b.setsockopt(zmq.RCVHWM, 0)
    b.connect(address)
    b.send(b"ready")
    recv = b.recv if raw else b.recv_pyobj
    for _ in range(n):
        recv()
    b.send(b"done")
    b.close()
    ctx.term()


def zmq_ipc_processes(payload, n):
    import os
    import tempfile
    import zmq
    raw = isinstance(payload, bytes)
    address = f"ipc://{tempfile.gettempdir()}/xchan-bench-{os.getpid()}"
    ctx = zmq.Context()
    a = _zmq_pair(ctx, address)
    p = CTX.Process(target=_zmq_ipc_consume, args=(address, n, raw))
    p.start()
    a.recv()
    t0 = now()
    send = a.send if raw else a.send_pyobj
    for _ in range(n):
        send(payload)
    a.recv()
    dt = now() - t0
    p.join()
    a.close()
    ctx.term()
    return dt


def _zmq_echo(address):
    import zmq
    ctx = zmq.Context()
    b = ctx.socket(zmq.PAIR)
    b.connect(address)
    while msg := b.recv():
        b.send(msg)
    b.close()
    ctx.term()


def zmq_ipc_rtt(n, pause):
    import os
    import tempfile
    import zmq
    address = f"ipc://{tempfile.gettempdir()}/xchan-bench-rtt-{os.getpid()}"
    ctx = zmq.Context()
    a = _zmq_pair(ctx, address)
    p = CTX.Process(target=_zmq_echo, args=(address,))
    p.start()
    samples = round_trips(a.send, a.recv, n, pause)
    a.send(b"")
    p.join()
    a.close()
    ctx.term()
    return samples


# ---- the PEP 734 backport -------------------------------------------------------------

def pep734_backport_interpreters(payload, n):
    """backports.interpreters: a Queue to a consumer in a subinterpreter on a thread."""
    import backports.interpreters as interpreters
    q = interpreters.create_queue()
    done = interpreters.create_queue()
    interp = interpreters.create()
    code = (f"import backports.interpreters as interpreters\n"
            f"q, done = interpreters.Queue({q.id}), interpreters.Queue({done.id})\n"
            f"done.put('ready')\nfor _ in range({n}): q.get()\ndone.put('done')\n")
    t = threading.Thread(target=interp.exec, args=(code,))
    t.start()
    done.get(timeout=60)
    t0 = now()
    put = q.put
    for _ in range(n):
        put(payload)
    done.get(timeout=600)
    dt = now() - t0
    t.join()
    interp.close()
    return dt


def pep734_backport_rtt(n, pause):
    import backports.interpreters as interpreters
    a, b = interpreters.create_queue(), interpreters.create_queue()
    interp = interpreters.create()
    code = (f"import backports.interpreters as interpreters\n"
            f"a, b = interpreters.Queue({a.id}), interpreters.Queue({b.id})\n"
            f"while (msg := a.get()) != b'': b.put(msg)\n")
    t = threading.Thread(target=interp.exec, args=(code,))
    t.start()
    samples = round_trips(a.put, b.get, n, pause)
    a.put(b"")
    t.join()
    interp.close()
    return samples


# ---- shared ---------------------------------------------------------------------------

def round_trips(send, recv, n, pause):
    """Seconds per 64 B round trip through send() and recv(), after 10 unmeasured ones;
    with `pause`, that long asleep before each (so that the other side parks)."""
    msg = b"x" * 64
    samples = []
    for i in range(n + 10):
        if pause:
            time.sleep(pause)
        t0 = now()
        send(msg)
        recv()
        if i >= 10:
            samples.append(now() - t0)
    return samples
