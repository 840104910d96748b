#!/usr/bin/env python3
"""Counts test cases across meson build directories and prints 'N passed, N failed, N skipped'.

Reads each build's meson-logs/testlog.json: a GoogleTest binary counts its cases (skipped
ones as skipped), the Python suite the outcomes its "xchan suite: ..." line reports (another
unittest run its "Ran N" line), anything else counts as one test. Before the count it names
every test that did not pass, with the case it was in, the last lines it printed and the
start of its stderr (where sanitizers report), so that the end of a long CI log says what
failed. Exits 1 if anything failed or if no test ran at all.
"""
import json
import re
import sys
from pathlib import Path

TAIL_LINES = 25
HEAD_LINES = 60


def count(entry):
    """(passed, failed, skipped) of one meson test."""
    out = entry.get("stdout") or ""
    ok = entry.get("result") == "OK"
    gtest_ok = len(re.findall(r"^\[       OK \] ", out, re.M))
    gtest_failed = len(re.findall(r"^\[  FAILED  \] \S+ \(", out, re.M))
    gtest_skipped = len(re.findall(r"^\[  SKIPPED \] \S+ \(", out, re.M))
    if gtest_ok or gtest_failed or gtest_skipped:
        # A binary that crashed or timed out after some cases still counts as a failure.
        return gtest_ok, gtest_failed + (0 if ok or gtest_failed else 1), gtest_skipped
    ours = re.search(r"^xchan suite: (\d+) passed, (\d+) failed, (\d+) skipped$", out, re.M)
    if ours:  # tests/python/run_suite.py counts its outcomes itself
        passed, failed, skipped = (int(n) for n in ours.groups())
        return passed, failed + (0 if ok or failed else 1), skipped
    ran = re.search(r"^Ran (\d+) tests?", out, re.M)
    if ran:
        total = int(ran.group(1))
        summary = re.search(r"^(?:OK|FAILED)(?: \((.*)\))?$", out, re.M)
        detail = (summary.group(1) or "") if summary else ""
        failed = sum(int(n) for n in re.findall(r"(?:failures|errors|unexpected successes)=(\d+)", detail))
        skipped = sum(int(n) for n in re.findall(r"skipped=(\d+)", detail))
        if not ok and failed == 0:
            failed = 1
        return max(total - failed - skipped, 0), failed, skipped
    return (1, 0, 0) if ok else (0, 1, 0)


def describe_failure(build_dir, entry):
    """What a failed meson test was doing: its result, the cases that failed or the one it
    was in when it stopped, and the last lines of its output."""
    out = entry.get("stdout") or ""
    lines = [f"--- {build_dir}: {entry.get('name')}: {entry.get('result')} "
             f"(exit {entry.get('returncode')}, {entry.get('duration', 0):.1f} s)"]
    failed_cases = re.findall(r"^\[  FAILED  \] (\S+) \(", out, re.M)
    started = re.findall(r"^\[ RUN      \] (\S+)", out, re.M)
    finished = set(re.findall(r"^\[  (?:     OK|FAILED ) \] (\S+) \(", out, re.M))
    unfinished = [c for c in started if c not in finished]
    if failed_cases:
        lines.append("failed cases: " + ", ".join(failed_cases))
    if unfinished:
        lines.append("stopped inside: " + ", ".join(unfinished))
    out_lines = out.rstrip().splitlines()
    runs = [i for i, l in enumerate(out_lines) if l.startswith("[ RUN      ] ")]
    if unfinished and runs:  # a crash report starts after the case's RUN line
        shown = out_lines[runs[-1]:runs[-1] + HEAD_LINES]
    else:
        shown = out_lines[-TAIL_LINES:]
    lines.extend(shown)
    err = (entry.get("stderr") or "").rstrip().splitlines()
    if err:  # sanitizer reports go to stderr; their first lines say what and where
        lines.append("stderr:")
        lines.extend(err[:HEAD_LINES])
    return "\n".join(lines)


def main(build_dirs):
    passed = failed = skipped = 0
    reports = []
    for d in build_dirs:
        log = Path(d) / "meson-logs" / "testlog.json"
        if not log.exists():
            reports.append(f"--- {d}: no test log")
            failed += 1
            continue
        for line in log.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                p, f, k = count(entry)
                passed += p
                failed += f
                skipped += k
                if f:
                    reports.append(describe_failure(d, entry))
    for report in reports:
        print(report)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build"]))
