"""Python-level benchmark: xchan between two own-GIL interpreters and over shared channels
to a process made by fork, side by side with
multiprocessing.Pipe, multiprocessing.Queue, queue.Queue between threads, (on 3.13)
CPython's raw _interpqueues, and the third-party peers of peers.py (faster-fifo, pyzmq,
the PEP 734 backport), all in one run. Writes JSON and a Markdown table; chart.py draws
the chart from the JSON.

    python bench/python/compare.py [--quick] [--json out.json] [--markdown out.md]
"""
import argparse
import json
import multiprocessing as mp
import os
import pickle
import platform
import queue
import statistics
import sys
import threading
import time

import xchan

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_workers  # noqa: E402
import peers  # noqa: E402

now = time.perf_counter
CTX = mp.get_context("fork")


SMALL_OBJECTS = {"dict": {"id": 7, "name": "widget", "price": 9.99, "tags": ["a", "b"]}, "instance": None}


# ---- throughput --------------------------------------------------------------------------

def xchan_tp(payload, n, batch=0, processes=False):
    """n messages (in batches if `batch`) to a sink in a worker interpreter, or (processes)
    over a shared channel to a child made by fork (multiprocessing's 'fork' context)."""
    assert not batch or n % batch == 0, "whole batches only"
    tx, rx = xchan.channel(capacity=4096, max_bytes=max(64 << 20, 4 * len(pickle.dumps(payload))), shared=processes)
    done_tx, done_rx = xchan.channel(shared=processes)
    if processes:
        sink = CTX.Process(target=bench_workers.sink, args=(rx, done_tx, n, batch))
        sink.start()
    else:
        sink = xchan.spawn(bench_workers.sink, rx, done_tx, n, batch)
    rx.close()
    done_tx.close()
    done_rx.recv(timeout=60)
    t0 = now()
    if batch:
        items = [payload] * batch
        for _ in range(n // batch):
            tx.send_many(items)
    else:
        send = tx.send
        for _ in range(n):
            send(payload)
    assert done_rx.recv(timeout=600) == n
    dt = now() - t0
    sink.join()
    return dt


def _pipe_child(conn, n, raw):
    conn.send_bytes(b"ready")
    for _ in range(n):
        conn.recv_bytes() if raw else conn.recv()
    conn.send_bytes(b"done")


def pipe_tp(payload, n):
    raw = isinstance(payload, bytes)
    a, b = CTX.Pipe()
    p = CTX.Process(target=_pipe_child, args=(b, n, raw))
    p.start()
    a.recv_bytes()
    t0 = now()
    for _ in range(n):
        a.send_bytes(payload) if raw else a.send(payload)
    a.recv_bytes()
    dt = now() - t0
    p.join()
    return dt


def _mpq_child(q, done, n):
    done.put("ready")
    for _ in range(n):
        q.get()
    done.put("done")


def mpqueue_tp(payload, n):
    q, done = CTX.Queue(), CTX.Queue()
    p = CTX.Process(target=_mpq_child, args=(q, done, n))
    p.start()
    done.get()
    t0 = now()
    for _ in range(n):
        q.put(payload)
    done.get()
    dt = now() - t0
    p.join()
    return dt


def thread_queue_tp(payload, n):
    q = queue.Queue(maxsize=4096)
    t = threading.Thread(target=lambda: [q.get() for _ in range(n)])
    t0 = now()
    t.start()
    for _ in range(n):
        q.put(payload)
    t.join()
    return now() - t0


def timed_with_subinterpreter_consumer(consumer_code, produce):
    """Runs `consumer_code` (which ends by putting to the queue id named DONE) in a fresh
    isolated subinterpreter on a thread, and times produce() until that "done" arrives.
    The parent spins for "done", so only the consumer's own waiting counts."""
    import _interpqueues as iq
    import _interpreters as interps
    done = iq.create(0, 0, 1)
    iid = interps.create("isolated")
    code = f"import sys\nsys.path[:] = {sys.path!r}\nDONE = {done}\n" + consumer_code
    t = threading.Thread(target=interps.run_string, args=(iid, code))
    t.start()
    t0 = now()
    produce()
    while True:
        try:
            iq.get(done)
            break
        except Exception:
            time.sleep(0)
    dt = now() - t0
    t.join()
    interps.destroy(iid)
    iq.destroy(done)
    return dt


def one_copy_tp(payload, n):
    """The receiver's floor for a bytes message: building each new bytes object from a
    buffer, one copy and nothing else, on one thread (no channel, no second core)."""
    src = bytearray(payload)
    t0 = now()
    for _ in range(n):
        bytes(src)
    return now() - t0


def interpqueues_tp(payload, n, pickled=False):
    """CPython 3.13's raw cross-interpreter queue, consumer spinning on get() in a
    subinterpreter. With pickled=True, objects are pickled/unpickled as its wrapper does."""
    import _interpqueues as iq
    qid = iq.create(0, 0, 1)
    consumer = f"""
import _interpqueues as iq, pickle
n = 0
while n < {n}:
    try:
        obj = iq.get({qid})[0]
    except Exception as e:
        if type(e).__name__ != "QueueEmpty":
            raise
        continue
    {"pickle.loads(obj)" if pickled else "obj"}
    n += 1
iq.put(DONE, b"done", 0, 1)
"""

    def produce():
        put = iq.put
        if pickled:
            for _ in range(n):
                put(qid, pickle.dumps(payload), 0, 1)
        else:
            for _ in range(n):
                put(qid, payload, 0, 1)

    dt = timed_with_subinterpreter_consumer(consumer, produce)
    iq.destroy(qid)
    return dt


def wrapper_queue_available():
    try:
        from test.support.interpreters import queues  # noqa: F401  (3.13's PEP 734 draft)
        return True
    except ImportError:  # a Python built without its test package
        return False


def wrapper_queue_tp(payload, n):
    """CPython 3.13's high-level queue (test.support.interpreters.queues, what became
    concurrent.interpreters.Queue in 3.14) with its defaults: objects are pickled, and get()
    polls in 10 ms sleeps when the queue is empty."""
    from test.support.interpreters import queues
    q = queues.create()
    consumer = f"""
import _interpqueues as iq
from test.support.interpreters import queues
q = queues.Queue({q.id})
for _ in range({n}):
    q.get()
iq.put(DONE, b"done", 0, 1)
"""

    def produce():
        put = q.put
        for _ in range(n):
            put(payload)

    return timed_with_subinterpreter_consumer(consumer, produce)


# ---- round trips ---------------------------------------------------------------------

def _xchan_echo_process(a_rx, b_tx, a_tx, b_rx):
    a_tx.close()  # its copies of the parent's ends, so that the loop ends when the parent's closes
    b_rx.close()
    bench_workers.echo(a_rx, b_tx)


def xchan_rtt(n, pause, processes=False):
    """Round trips to an echo in a worker interpreter, or (processes) in a forked child
    over shared channels."""
    a_tx, a_rx = xchan.channel(shared=processes)
    b_tx, b_rx = xchan.channel(shared=processes)
    if processes:
        echo = CTX.Process(target=_xchan_echo_process, args=(a_rx, b_tx, a_tx, b_rx))
        echo.start()
    else:
        echo = xchan.spawn(bench_workers.echo, a_rx, b_tx)
    a_rx.close()
    b_tx.close()
    samples = peers.round_trips(a_tx.send, b_rx.recv, n, pause)
    a_tx.close()
    echo.join()
    return samples


def _pipe_echo(conn):
    # A forked child also holds the parent's end, so it would never see EOF: stop on b"".
    while msg := conn.recv_bytes():
        conn.send_bytes(msg)


def pipe_rtt(n, pause):
    a, b = CTX.Pipe()
    p = CTX.Process(target=_pipe_echo, args=(b,))
    p.start()
    b.close()
    samples = peers.round_trips(a.send_bytes, a.recv_bytes, n, pause)
    a.send_bytes(b"")
    p.join()
    a.close()
    return samples


# ---- driver ----------------------------------------------------------------------------

REPEATS = 3


def rate(fn, *args, n):
    """Messages per second: the median of REPEATS runs after one warm-up run of a tenth of
    the size (this machine's speed shifts between runs, sometimes by 2x, and a peer's first
    run in a process is slower; a single run per peer made ratios depend on luck)."""
    fn(*args, max(1, n // 10))
    return statistics.median(n / fn(*args, n) for _ in range(REPEATS))


ONE_PROCESS = "one process"
PROCESSES = "between processes"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer messages (for smoke runs)")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    opts = ap.parse_args()
    q = 10 if opts.quick else 1
    SMALL_OBJECTS["instance"] = bench_workers.Record()
    has_iq = sys.version_info >= (3, 13)
    has_wrapper = has_iq and wrapper_queue_available()
    rows = []

    def add(case, peer, value, unit, anchor=None, scope=ONE_PROCESS, note=None):
        rows.append({"case": case, "peer": peer, "value": value, "unit": unit, "anchor": anchor, "scope": scope,
                     "note": note})
        shown = f"{value:>14,.1f} {unit}" if value is not None else f"{'n/a':>14} ({note})"
        print(f"  {case:<28} {peer:<40} {shown}", flush=True)

    def add_peer(case, peer, module, fn, *args, n, scope, unit="msgs/s"):
        """A third-party peer's row: measured, or why it could not be."""
        why = peers.unavailable(module)
        if why is None:
            try:
                value = rate(fn, *args, n=n) if unit == "msgs/s" else statistics.median(fn(*args)) * 1e6
                add(case, peer, value, unit, scope=scope)
                return
            except Exception as e:  # a peer that fails a case: say so, do not drop the row
                why = f"failed: {type(e).__name__}: {e}"
        add(case, peer, None, unit, scope=scope, note=why)

    def add_not_installable(case):
        for name, why in peers.NOT_INSTALLABLE.items():
            add(case, name, None, "msgs/s", note=why)

    print(f"xchan benchmark on Python {platform.python_version()}, {os.cpu_count()} CPUs")
    cases = [(b"x" * 64, "bytes 64 B", 300_000, 60_000), (b"x" * 4096, "bytes 4 KiB", 100_000, 20_000),
             (b"x" * (1 << 20), "bytes 1 MiB", 2000, 300)]
    for payload, case, n_fast, n_slow in cases:
        n_fast //= q
        n_slow //= q
        size = len(payload)
        add(case, "xchan send/recv (interpreters)", rate(xchan_tp, payload, n=n_fast), "msgs/s")
        if size == 64:
            n_batched = n_fast // 256 * 256  # whole batches
            add(case, "xchan send_many/recv_many (256)", rate(lambda p, k: xchan_tp(p, max(256, k // 256 * 256), 256), payload, n=n_batched), "msgs/s")
        add_peer(case, "backports.interpreters Queue (interpreters)", "backports.interpreters",
                 peers.pep734_backport_interpreters, payload, n=n_slow, scope=ONE_PROCESS)
        if has_iq and size != 4096:
            add(case, "_interpqueues (raw, spinning)", rate(interpqueues_tp, payload, n=n_slow), "msgs/s")
        if size == 64:
            add(case, "queue.Queue (threads)", rate(thread_queue_tp, payload, n=n_slow), "msgs/s")
        add_peer(case, "faster-fifo (threads)", "faster_fifo", peers.faster_fifo_threads, payload, n=n_slow,
                 scope=ONE_PROCESS)
        add_peer(case, "pyzmq inproc (threads)", "zmq", peers.zmq_inproc_threads, payload, n=n_slow, scope=ONE_PROCESS)
        add_not_installable(case)
        add(case, "multiprocessing.Pipe", rate(pipe_tp, payload, n=n_slow), "msgs/s", anchor=True, scope=PROCESSES)
        if size == 64:
            add(case, "multiprocessing.Queue", rate(mpqueue_tp, payload, n=n_slow), "msgs/s", scope=PROCESSES)
        add_peer(case, "faster-fifo (processes)", "faster_fifo", peers.faster_fifo_processes, payload, n=n_slow,
                 scope=PROCESSES)
        add_peer(case, "pyzmq ipc (processes)", "zmq", peers.zmq_ipc_processes, payload, n=n_slow, scope=PROCESSES)
        add(case, "xchan shared channel (processes, fork)", rate(lambda p, k: xchan_tp(p, k, processes=True), payload, n=n_fast), "msgs/s",
            scope=PROCESSES)
        if size == 1 << 20:
            add(case, "bytes(buffer) alone: one copy, no channel", rate(one_copy_tp, payload, n=n_fast), "msgs/s")
    big = b"x" * (64 << 20)
    n_big = max(2, 10 // q)
    add("bytes 64 MiB", "xchan send/recv (interpreters)", rate(xchan_tp, big, n=n_big), "msgs/s")
    add("bytes 64 MiB", "multiprocessing.Pipe", rate(pipe_tp, big, n=max(1, n_big // 2)), "msgs/s", anchor=True,
        scope=PROCESSES)
    for name, obj in SMALL_OBJECTS.items():
        case = f"pickled {name}"
        n = 100_000 // q
        add(case, "xchan send/recv (interpreters)", rate(xchan_tp, obj, n=n), "msgs/s")
        if has_wrapper:
            add(case, "3.13 interpreters.queues.Queue (pickles)", rate(wrapper_queue_tp, obj, n=n // 3), "msgs/s",
                anchor=True)
        if has_iq:
            add(case, "_interpqueues + pickle (raw)", rate(lambda p, k: interpqueues_tp(p, k, True), obj, n=n // 3),
                "msgs/s", anchor=not has_wrapper)
        if name == "dict":
            add_peer(case, "backports.interpreters Queue (interpreters)", "backports.interpreters",
                     peers.pep734_backport_interpreters, obj, n=n // 3, scope=ONE_PROCESS)
            add_peer(case, "faster-fifo (threads)", "faster_fifo", peers.faster_fifo_threads, obj, n=n // 3,
                     scope=ONE_PROCESS)
            add_peer(case, "pyzmq inproc (threads)", "zmq", peers.zmq_inproc_threads, obj, n=n // 3, scope=ONE_PROCESS)
        add(case, "multiprocessing.Pipe", rate(pipe_tp, obj, n=n // 3), "msgs/s", scope=PROCESSES,
            anchor=not has_iq)
        add(case, "xchan shared channel (processes, fork)", rate(lambda p, k: xchan_tp(p, k, processes=True), obj, n=n), "msgs/s",
            scope=PROCESSES)
        if name == "dict":
            add_peer(case, "faster-fifo (processes)", "faster_fifo", peers.faster_fifo_processes, obj, n=n // 3,
                     scope=PROCESSES)
            add_peer(case, "pyzmq ipc (processes)", "zmq", peers.zmq_ipc_processes, obj, n=n // 3, scope=PROCESSES)
    for label, pause in [("round trip, both awake", 0), ("round trip, receiver parked", 0.002)]:
        n = (20_000 if not pause else 1000) // q
        unit = "us median"
        add(label, "xchan (interpreters)", statistics.median(xchan_rtt(n, pause)) * 1e6, unit)
        add_peer(label, "backports.interpreters Queue (interpreters)", "backports.interpreters",
                 peers.pep734_backport_rtt, n // 4, pause, n=None, scope=ONE_PROCESS, unit=unit)
        add(label, "multiprocessing.Pipe", statistics.median(pipe_rtt(n, pause)) * 1e6, unit, anchor=True,
            scope=PROCESSES)
        add(label, "xchan shared channel (processes, fork)", statistics.median(xchan_rtt(n, pause, processes=True)) * 1e6,
            unit, scope=PROCESSES)
        add_peer(label, "faster-fifo (processes)", "faster_fifo", peers.faster_fifo_rtt, n, pause, n=None,
                 scope=PROCESSES, unit=unit)
        add_peer(label, "pyzmq ipc (processes)", "zmq", peers.zmq_ipc_rtt, n, pause, n=None, scope=PROCESSES,
                 unit=unit)

    # Ratios against the anchor of each case.
    anchors = {r["case"]: r["value"] for r in rows if r["anchor"]}
    for r in rows:
        a = anchors.get(r["case"])
        if a and r["value"]:
            r["ratio"] = (r["value"] / a) if "msgs" in r["unit"] else (a / r["value"])
    # Throughput against CPython's raw interpreter queue too, where it was measured.
    raw_iq = {r["case"]: r["value"] for r in rows if r["peer"] == "_interpqueues (raw, spinning)"}
    for r in rows:
        if r["case"] in raw_iq and r["value"] and r["peer"] != "_interpqueues (raw, spinning)":
            r["ratio_interpqueues"] = r["value"] / raw_iq[r["case"]]
    meta = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "quick": opts.quick, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "peers": peers.versions()}
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)
    if opts.markdown:
        with open(opts.markdown, "w") as f:
            f.write("# Python-level performance\n\n")
            f.write(f"Generated by `make bench` (`bench/python/compare.py`) on {meta['when']}: Python {meta['python']}, "
                    f"{meta['cpus']} CPUs; peers: "
                    + ", ".join(f"{k} {v}" for k, v in meta["peers"].items())
                    + f". All rows measured in one run; each throughput is the median of {REPEATS} runs after a "
                    "warm-up run. Scope: the producer and the consumer in one process (threads or interpreters) "
                    "or in two processes. Ratio: against the anchor row of the same case (higher is better; for "
                    "round trips, anchor time / row time); the last column compares throughput with CPython's raw "
                    "`_interpqueues` where that was measured. A peer that could not be installed or could not do "
                    "a case says why instead of a value. The chart is `docs/benchmark.png` "
                    "(`bench/python/chart.py`).\n\n")
            f.write("| case | scope | peer | value | unit | ratio | vs raw _interpqueues |\n|---|---|---|---|---|---|---|\n")
            for r in rows:
                ratio = "anchor" if r["anchor"] else (f"{r['ratio']:.1f}x" if "ratio" in r else "")
                vs_iq = f"{r['ratio_interpqueues']:.2f}x" if "ratio_interpqueues" in r else ""
                value = f"{r['value']:,.1f}" if r["value"] is not None else f"n/a: {r['note']}"
                f.write(f"| {r['case']} | {r['scope']} | {r['peer']} | {value} | {r['unit']} | {ratio} | {vs_iq} |\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
