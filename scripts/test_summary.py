#!/usr/bin/env python3
"""Counts test cases across meson build directories and prints 'N passed, N failed, N skipped'.

Reads each build's meson-logs/testlog.json: a GoogleTest binary counts its cases, a
unittest run counts its tests, anything else counts as one test. Exits 1 if anything
failed or if no test ran at all.
"""
import json
import re
import sys
from pathlib import Path


def count(entry):
    """(passed, failed, skipped) of one meson test."""
    out = entry.get("stdout") or ""
    ok = entry.get("result") == "OK"
    gtest_ok = len(re.findall(r"^\[       OK \] ", out, re.M))
    gtest_failed = len(re.findall(r"^\[  FAILED  \] \S+ \(", out, re.M))
    if gtest_ok or gtest_failed:
        # A binary that crashed or timed out after some cases still counts as a failure.
        return gtest_ok, gtest_failed + (0 if ok or gtest_failed else 1), 0
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


def main(build_dirs):
    passed = failed = skipped = 0
    for d in build_dirs:
        log = Path(d) / "meson-logs" / "testlog.json"
        if not log.exists():
            print(f"{d}: no test log", file=sys.stderr)
            failed += 1
            continue
        for line in log.read_text().splitlines():
            if line.strip():
                p, f, k = count(json.loads(line))
                passed += p
                failed += f
                skipped += k
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["build"]))
