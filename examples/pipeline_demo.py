"""xchan demo (`make demo`): a producer -> N workers -> consumer pipeline doing real CPU work
per item, run on own-GIL interpreters connected by xchan channels, and the same pipeline on
multiprocessing (Pipe and Queue) and on threads, side by side. Then Victor Stinner's
factorial benchmark (sequential / threads / multiprocessing / xchan interpreters).

The worker functions live in this script: xchan.spawn runs them in fresh subinterpreters
the way multiprocessing's spawn start method does (hence the __main__ guard below).
"""
import math
import multiprocessing as mp
import os
import queue
import statistics
import sys
import threading
import time

from tqdm import tqdm

import xchan

ITEMS = int(os.environ.get("XCHAN_DEMO_ITEMS", 400))
WORK = 60_000        # loop iterations of pure-Python work per item
WORKERS = os.cpu_count() or 2
FACTORIAL_N = 50_000
FACTORIAL_ROUNDS = 5
STOP = None


def cpu_work(seed):
    total = seed
    for i in range(WORK):
        total = (total * 31 + i) % 1_000_003
    return total


# ---- workers (run in subinterpreters, processes or threads) -----------------------------

def xchan_worker(jobs, results):
    for item in jobs:                       # ends when the producer closes its Sender
        results.send((item, cpu_work(item)))


def mp_pipe_worker(conn):
    while (item := conn.recv()) is not STOP:
        conn.send((item, cpu_work(item)))


def queue_worker(jobs, results):
    while (item := jobs.get()) is not STOP:
        results.put((item, cpu_work(item)))


# ---- the pipelines -----------------------------------------------------------------------

class Progress:
    """A tqdm bar on a terminal; in a log (not a terminal), one plain line per pipeline."""

    def __init__(self, label, total):
        self.label, self.t0 = label, time.perf_counter()
        interactive = sys.stderr.isatty()
        self.bar = tqdm(total=total, desc=f"  {label:<24}", file=sys.stderr, leave=False, disable=not interactive,
                        bar_format="{desc} {bar:30} {n_fmt}/{total_fmt}")
        if not interactive:
            print(f"  {label}: running", file=sys.stderr, flush=True)

    def step(self, n=1):
        self.bar.update(n)

    def finish(self):
        self.bar.close()
        return time.perf_counter() - self.t0


def run_xchan():
    jobs_tx, jobs_rx = xchan.channel(capacity=256)
    results_tx, results_rx = xchan.channel(capacity=256)
    progress = Progress("xchan interpreters", ITEMS)
    workers = [xchan.spawn(xchan_worker, jobs_rx, results_tx) for _ in range(WORKERS)]
    jobs_rx.close()
    results_tx.close()

    def produce():
        jobs_tx.send_many(range(ITEMS))
        jobs_tx.close()

    producer = threading.Thread(target=produce)
    producer.start()
    checksum = 0
    for _, value in results_rx:             # ends when every worker's results end closed
        checksum += value
        progress.step()
    producer.join()
    for w in workers:
        w.join()
    return progress.finish(), checksum


def run_mp_pipe():
    ctx = mp.get_context("fork")
    progress = Progress("multiprocessing.Pipe", ITEMS)
    conns, procs = [], []
    for _ in range(WORKERS):
        a, b = ctx.Pipe()
        p = ctx.Process(target=mp_pipe_worker, args=(b,))
        p.start()
        conns.append(a)
        procs.append(p)
    checksum = 0
    # Keep every worker busy: prime each pipe, then refill whichever answers.
    next_item = 0
    for c in conns:
        if next_item < ITEMS:
            c.send(next_item)
            next_item += 1
    from multiprocessing.connection import wait
    received = 0
    while received < ITEMS:
        for c in wait(conns):
            _, value = c.recv()
            checksum += value
            received += 1
            progress.step()
            if next_item < ITEMS:
                c.send(next_item)
                next_item += 1
    for c in conns:
        c.send(STOP)
    for p in procs:
        p.join()
    return progress.finish(), checksum


def run_queues(label, make_queue, start_worker):
    progress = Progress(label, ITEMS)
    jobs, results = make_queue(), make_queue()
    workers = [start_worker(jobs, results) for _ in range(WORKERS)]
    for i in range(ITEMS):
        jobs.put(i)
    for _ in workers:
        jobs.put(STOP)
    checksum = 0
    for _ in range(ITEMS):
        checksum += results.get()[1]
        progress.step()
    for w in workers:
        w.join()
    return progress.finish(), checksum


def start_process(jobs, results):
    p = mp.get_context("fork").Process(target=queue_worker, args=(jobs, results))
    p.start()
    return p


def start_thread(jobs, results):
    t = threading.Thread(target=queue_worker, args=(jobs, results))
    t.start()
    return t


# ---- factorial benchmark -------------------------------------------------------------------

def start_and_join(tasks):
    """Starts threads or processes together, then waits for all of them."""
    for t in tasks:
        t.start()
    for t in tasks:
        t.join()


def factorial_once():
    results = {}
    t0 = time.perf_counter()
    for _ in range(WORKERS):
        math.factorial(FACTORIAL_N)
    results["sequential"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    start_and_join([threading.Thread(target=math.factorial, args=(FACTORIAL_N,)) for _ in range(WORKERS)])
    results["threads"] = time.perf_counter() - t0

    # Each worker runs math.factorial itself, as the processes do: one that ran a function of
    # this script would first re-run the script (its imports) in the new interpreter, as
    # multiprocessing's spawn start method does, while fork inherits it for free.
    ctx = mp.get_context("fork")
    t0 = time.perf_counter()
    start_and_join([ctx.Process(target=math.factorial, args=(FACTORIAL_N,)) for _ in range(WORKERS)])
    results["multiprocessing"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    workers = [xchan.spawn(math.factorial, FACTORIAL_N) for _ in range(WORKERS)]
    for w in workers:
        w.join()
    results["xchan interpreters"] = time.perf_counter() - t0
    return results


def factorial_all(rounds=FACTORIAL_ROUNDS):
    """Median of `rounds` runs of each variant, interleaved (this machine's speed drifts)."""
    runs = [factorial_once() for _ in range(rounds)]
    return {name: statistics.median(r[name] for r in runs) for name in runs[0]}


def main():
    print(f"xchan pipeline demo: {ITEMS} items x {WORK:,} loop iterations each, {WORKERS} workers, "
          f"Python {sys.version.split()[0]}\n")
    runs = [
        ("xchan interpreters", run_xchan),
        ("multiprocessing.Pipe", run_mp_pipe),
        ("multiprocessing.Queue", lambda: run_queues("multiprocessing.Queue", mp.get_context("fork").Queue, start_process)),
        ("threads + queue.Queue", lambda: run_queues("threads + queue.Queue", queue.Queue, start_thread)),
    ]
    results = []
    for name, fn in runs:
        seconds, checksum = fn()
        results.append((name, seconds, checksum))
    reference = results[-1][1]
    print(f"  {'pipeline':<24} {'seconds':>8} {'items/s':>10} {'vs threads':>11}")
    for name, seconds, checksum in results:
        print(f"  {name:<24} {seconds:>8.2f} {ITEMS / seconds:>10.1f} {reference / seconds:>10.2f}x")
    if len({c for _, _, c in results}) != 1:
        print("  checksums differ!", {n: c for n, _, c in results})
        return 1

    print(f"\nfactorial({FACTORIAL_N:,}) x {WORKERS} (Victor Stinner's benchmark, median of {FACTORIAL_ROUNDS} rounds)")
    fact = factorial_all()
    seq = fact["sequential"]
    for name, seconds in fact.items():
        print(f"  {name:<24} {seconds * 1000:>8.0f} ms  {seq / seconds:>5.2f}x sequential")
    ratio = fact["xchan interpreters"] / fact["multiprocessing"]
    print(f"  xchan interpreters / multiprocessing: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
