"""Memory per spawn: how much the process grows per xchan.spawn/join cycle, side by side
with CPython's own create/destroy of an isolated own-GIL interpreter on a new thread, all in
one run. Cases run in interleaved chunks so drift in the heap affects them all alike.

    PYTHONPATH=build/python_bindings python bench/python/spawn_memory.py [--cycles 2000] [--json out.json]

Cases, one cycle each:
  a  stdlib: on a new threading.Thread, create an isolated interpreter, run a script that
     imports nothing, destroy it, join the thread (CPython's own cost, the baseline)
  b  as a, the script imports xchan (the cost of loading the extension module)
  c  xchan.spawn(noop).join()
  d  a fresh channel; xchan.spawn(send_one, tx); recv the message; join
  e  as a, the script imports xchan and the workers module and calls noop(): the Python
     work of c without xchan's spawn machinery, so c - e is what spawn itself leaves behind
RSS is VmRSS from /proc/self/status; "malloc in use" is glibc's mallinfo2() (uordblks +
hblkhd, all arenas), read through ctypes in the main interpreter only. obmalloc arenas
are mmap()ed outside malloc, so they show in RSS but not in the malloc figure.

CPython 3.12/3.13 keep the obmalloc arenas of a destroyed interpreter (python/cpython
issues 110411 and 113055), so every page an interpreter touched stays in RSS, including
the compiler's work on a module without a valid .pyc: the benchmark writes the workers
module's .pyc (even under PYTHONDONTWRITEBYTECODE) and warns if xchan's .pyc are stale.
That growth is real: if --cycles would take more than 60% of MemAvailable (2000 cycles of
five cases is ~18 GiB), fewer run, and the output says so.
"""
import argparse
import ctypes
import gc
import importlib.util
import json
import os
import platform
import py_compile
import sys
import threading
import time

import xchan

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spawn_memory_workers as workers  # noqa: E402

try:
    import _interpreters as _stdlib  # 3.13

    def _create():
        return _stdlib.create("isolated")

    def _run(iid, source):
        failure = _stdlib.exec(iid, source)  # returns the exception's snapshot, or None
        if failure is not None:
            raise RuntimeError(f"script failed in the interpreter: {failure}")
except ImportError:
    import _xxsubinterpreters as _stdlib  # 3.12

    def _create():
        return _stdlib.create(isolated=True)

    def _run(iid, source):
        _stdlib.run_string(iid, source)


# ---- measuring ---------------------------------------------------------------------------

class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _load_mallinfo2():
    try:
        fn = ctypes.CDLL(None).mallinfo2  # glibc >= 2.33
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []
    return fn


_mallinfo2 = _load_mallinfo2()


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def sample():
    """(RSS, malloc bytes in use, malloc bytes held from the system); None where unknown."""
    gc.collect()
    rss = rss_bytes()
    if _mallinfo2 is None:
        return rss, None, None
    m = _mallinfo2()
    return rss, m.uordblks + m.hblkhd, m.arena + m.hblkhd


def stale_bytecode(sources):
    """The source files a fresh interpreter would compile again (no valid .pyc)."""
    stale = []
    for src in sources:
        st = os.stat(src)
        try:
            with open(importlib.util.cache_from_source(src), "rb") as f:
                head = f.read(16)
        except OSError:
            head = b""
        fresh = (len(head) == 16 and head[:4] == importlib.util.MAGIC_NUMBER and head[4:8] == bytes(4)
                 and int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                 and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)
        if not fresh:
            stale.append(src)
    return stale


# ---- cases -------------------------------------------------------------------------------

def _on_new_thread(fn):
    """Runs fn on a fresh threading.Thread, joins it, re-raises its exception."""
    errors = []

    def target():
        try:
            fn()
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def _stdlib_cycle(source):
    def body():
        iid = _create()
        try:
            _run(iid, source)
        finally:
            _stdlib.destroy(iid)

    return lambda: _on_new_thread(body)


def _xchan_noop():
    xchan.spawn(workers.noop).join()


def _xchan_send_one():
    tx, rx = xchan.channel()
    w = xchan.spawn(workers.send_one, tx)
    if rx.recv(timeout=30) != b"x":
        raise RuntimeError("wrong message from the worker")
    w.join()


def make_cases():
    # The same sys.path as xchan.spawn gives its workers, set in a and b too: only the
    # import differs between them. `import sys` imports nothing new (it is built in).
    path = [p for p in sys.path if isinstance(p, str)]
    set_path = f"import sys; sys.path[:] = {path!r}"
    return {
        "a": ("stdlib create/exec/destroy on a thread", _stdlib_cycle(set_path)),
        "b": ("stdlib, the script imports xchan", _stdlib_cycle(set_path + "\nimport xchan")),
        "c": ("xchan.spawn(noop).join()", _xchan_noop),
        "d": ("channel + spawn(send_one, tx) + recv + join", _xchan_send_one),
        "e": ("stdlib, the script imports xchan and the workers module, calls noop()",
              _stdlib_cycle(set_path + f"\nimport xchan, {workers.__name__}; {workers.__name__}.noop()")),
    }


# ---- running -----------------------------------------------------------------------------

def warm_up(cases, warmup):
    """Runs `warmup` cycles of each case; returns the RSS all cases together grew per cycle."""
    before = rss_bytes()
    for _, cycle in cases.values():
        for _ in range(warmup):
            cycle()
    return (rss_bytes() - before) / warmup if warmup else 0.0


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def run(cases, cycles, rounds):
    names = list(cases)
    res = {n: {"rss": 0, "in_use": 0, "held": 0, "cycles": 0, "seconds": 0.0, "rounds": []} for n in names}
    chunks = [cycles // rounds + (1 if r < cycles % rounds else 0) for r in range(rounds)]
    for r, chunk in enumerate(chunks):
        order = names[r % len(names):] + names[:r % len(names)]  # each case takes each slot
        for n in order:
            cycle = cases[n][1]
            before = sample()
            t0 = time.perf_counter()
            for _ in range(chunk):
                cycle()
            dt = time.perf_counter() - t0
            after = sample()
            d = [None if a is None else a - b for a, b in zip(after, before)]
            acc = res[n]
            acc["rss"] += d[0]
            acc["in_use"] = None if d[1] is None else acc["in_use"] + d[1]
            acc["held"] = None if d[2] is None else acc["held"] + d[2]
            acc["cycles"] += chunk
            acc["seconds"] += dt
            acc["rounds"].append({"cycles": chunk, "rss": d[0], "in_use": d[1], "held": d[2]})
    return res


def per_cycle(total, cycles):
    return None if total is None else total / cycles


def fmt(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"


def markdown(cases, res):
    def minus(n, key, other):
        if other not in res or n == other or res[n][key] is None or res[other][key] is None:
            return "-"
        return fmt(per_cycle(res[n][key], res[n]["cycles"]) - per_cycle(res[other][key], res[other]["cycles"]))

    lines = [
        "| case | cycles | RSS growth (KiB) | RSS / cycle (B) | minus (a) | minus (e) | malloc in use / cycle (B) "
        "| minus (a) | RSS / cycle per round (B) | ms / cycle |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for n, acc in res.items():
        rounds = " / ".join(fmt(r["rss"] / r["cycles"]) for r in acc["rounds"])
        lines.append(
            f"| ({n}) {cases[n][0]} | {acc['cycles']} | {fmt(acc['rss'] / 1024)} "
            f"| {fmt(per_cycle(acc['rss'], acc['cycles']))} | {minus(n, 'rss', 'a')} | {minus(n, 'rss', 'e')} "
            f"| {fmt(per_cycle(acc['in_use'], acc['cycles']))} | {minus(n, 'in_use', 'a')} "
            f"| {rounds} | {fmt(1000 * acc['seconds'] / acc['cycles'], 2)} |")
    return "\n".join(lines)


def summary(res):
    """The figures the table exists for, in words."""
    def pc(n, key="rss"):
        return per_cycle(res[n][key], res[n]["cycles"]) if n in res and res[n][key] is not None else None

    out = []
    if pc("a") is not None:
        use = pc("a", "in_use")
        held = "" if use is None else f"; malloc memory in use grew {fmt(use)} B"
        out.append(f"CPython's own create/destroy (a): {fmt(pc('a'))} B RSS per interpreter{held}")
    if pc("a") is not None and pc("b") is not None:
        out.append(f"loading xchan in an interpreter (b) - (a): {fmt(pc('b') - pc('a'))} B RSS")
    for n in "cd":
        if pc(n) is not None and pc("e") is not None:
            use = "" if pc(n, "in_use") is None else f", {fmt(pc(n, 'in_use') - pc('e', 'in_use'))} B malloc in use"
            out.append(f"spawn's own part ({n}) - (e): {fmt(pc(n) - pc('e'))} B RSS{use}")
    return "\n" + "\n".join(out) if out else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=2000, help="measured cycles per case (default 2000)")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved chunks per case (default 4)")
    ap.add_argument("--warmup", type=int, default=50, help="unmeasured cycles per case first (default 50)")
    ap.add_argument("--cases", default="abcde", help="which cases to run, as letters (default abcde)")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    opts = ap.parse_args()
    # Compiled once here, read by every interpreter (a no-op if the .pyc is current).
    if stale_bytecode([workers.__file__]):
        py_compile.compile(workers.__file__, doraise=True)
    package = os.path.dirname(xchan.__file__)
    stale = stale_bytecode([workers.__file__] + sorted(
        os.path.join(package, f) for f in os.listdir(package) if f.endswith(".py")))
    if stale:
        print(f"warning: no valid .pyc for {', '.join(stale)}: every interpreter compiles them again, "
              "which shows as growth here", file=sys.stderr)
    all_cases = make_cases()
    cases = {n: all_cases[n] for n in all_cases if n in opts.cases}
    if not cases or opts.cycles < opts.rounds or opts.rounds < 1:
        ap.error("need at least one case and --cycles >= --rounds >= 1")
    start = sample()
    t0 = time.perf_counter()
    growth = warm_up(cases, opts.warmup)
    # The growth is real (CPython keeps every interpreter's memory): stay within 60% of
    # what the machine has left, which it may share, rather than wake the OOM killer.
    cycles, capped = opts.cycles, None
    available = mem_available()
    if growth > 0 and available is not None and growth * opts.cycles > 0.6 * available:
        cycles = max(opts.rounds, int(0.6 * available / growth))
        capped = (f"cycles capped from {opts.cycles} to {cycles}: {opts.cycles} would grow RSS by "
                  f"{growth * opts.cycles / 2**30:.1f} GiB, MemAvailable is {available / 2**30:.1f} GiB")
        print(capped, file=sys.stderr)
    res = run(cases, cycles, opts.rounds)
    end = sample()
    meta = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cycles": cycles,
        "cycles_capped": capped,
        "rounds": opts.rounds,
        "warmup": opts.warmup,
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX"),
        "seconds": round(time.perf_counter() - t0, 1),
        "rss_start": start[0],
        "rss_end": end[0],
        "parked_ends_at_end": xchan._xchan._parked_ends(),
        # Workers the main interpreter still lists after every cycle joined its worker
        # (None where the module has no _workers()).
        "listed_workers_at_end": getattr(xchan._xchan, "_workers", lambda: None)(),
        "threads_at_end": threading.active_count(),
        "stale_bytecode": stale,
    }
    print(f"Python {meta['python']}, {cycles} cycles per case in {opts.rounds} interleaved rounds "
          f"after {opts.warmup} warm-up cycles, MALLOC_ARENA_MAX={meta['MALLOC_ARENA_MAX'] or 'unset'}; "
          f"RSS {start[0] / 2**20:.1f} -> {end[0] / 2**20:.1f} MiB in {meta['seconds']} s\n")
    print(markdown(cases, res))
    print(summary(res))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"meta": meta, "cases": {n: dict(res[n], label=cases[n][0]) for n in res}}, f, indent=1)


if __name__ == "__main__":
    main()
