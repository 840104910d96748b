"""Draws the benchmark's chart from compare.py's JSON: throughput against message size for
every system (log scales, one line per system and scope) beside the round-trip latencies
as bars. `make chart` redraws docs/benchmark.png from bench/results/python.json.

    python bench/python/chart.py bench/results/python.json docs/benchmark.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SIZES = {"bytes 64 B": 64, "bytes 4 KiB": 4096, "bytes 1 MiB": 1 << 20}
RTT_CASES = ["round trip, both awake", "round trip, receiver parked"]


def main(source, target):
    with open(source) as f:
        report = json.load(f)
    rows = [r for r in report["rows"] if r["value"] is not None]
    fig, (tp, rtt) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [3, 2]})

    lines = {}
    for r in rows:
        if r["case"] in SIZES and r["unit"] == "msgs/s" and "one copy" not in r["peer"]:
            lines.setdefault((r["peer"], r["scope"]), []).append((SIZES[r["case"]], r["value"] * SIZES[r["case"]]))
    colors = plt.get_cmap("tab20").colors  # one color per line: the default cycle repeats after 10
    ordered = sorted(lines.items(), key=lambda kv: -max(v for _, v in kv[1]))
    for i, ((peer, scope), points) in enumerate(ordered):
        points.sort()
        style = "-" if scope == "one process" else "--"
        width = 2.5 if peer.startswith("xchan") else 1.2
        name = f"CPython {peer}" if peer.startswith("_") else peer  # (matplotlib hides "_" labels)
        tp.plot([p[0] for p in points], [p[1] / 1e6 for p in points], style, marker="o", linewidth=width,
                color=colors[(2 * i) % len(colors) + (i // (len(colors) // 2)) % 2],
                label=name + ("" if scope == "one process" else ", 2 processes"))
    tp.set_xscale("log", base=2)
    tp.set_yscale("log")
    tp.set_xticks(list(SIZES.values()), ["64 B", "4 KiB", "1 MiB"])
    tp.set_xlabel("message size")
    tp.set_ylabel("throughput, MB/s (log)")
    tp.set_title("One producer to one consumer (solid: one process; dashed: two processes)")
    tp.grid(True, which="both", alpha=0.3)
    tp.legend(fontsize=7.5, loc="lower right")

    systems = []
    for r in rows:
        if r["case"] in RTT_CASES and r["peer"] not in systems:
            systems.append(r["peer"])
    width = 0.38
    for i, case in enumerate(RTT_CASES):
        values = {r["peer"]: r["value"] for r in rows if r["case"] == case}
        xs = [k + (i - 0.5) * width for k in range(len(systems))]
        rtt.bar(xs, [values.get(s, 0) for s in systems], width, label=case.replace("round trip, ", ""))
    rtt.set_yscale("log")
    rtt.set_xticks(range(len(systems)), [s.replace(" (", "\n(") for s in systems], fontsize=7.5, rotation=30,
                   ha="right")
    rtt.set_ylabel("64 B round trip, us median (log)")
    rtt.set_title("Round trip")
    rtt.grid(True, axis="y", which="both", alpha=0.3)
    rtt.legend(fontsize=8)

    meta = report["meta"]
    fig.suptitle(f"xchan and its peers, measured in one run: Python {meta['python']}, {meta['cpus']} CPUs, "
                 f"{meta['when']} (docs/performance-python.md has every value)", fontsize=10)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
