#!/usr/bin/env bash
# Prints, comma-separated, the CPython 3.12 and 3.13 interpreters on this machine that
# have headers (python3.X on PATH if it runs, else pyenv's or /usr/local's builds).
# Debian's own python3 (3.11) has no per-interpreter GIL and is never used.
set -uo pipefail
found=()
for v in 3.12 3.13; do
  for cand in "$(command -v python$v 2>/dev/null)" "$HOME"/.pyenv/versions/$v.*/bin/python$v \
              /root/.pyenv/versions/$v.*/bin/python$v /usr/local/bin/python$v /usr/bin/python$v; do
    [[ -n $cand && -x $cand ]] || continue
    if "$cand" -c "import sys, sysconfig, os; sys.exit(0 if sys.version_info[:2] == tuple(map(int, '$v'.split('.'))) and os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')) else 1)" 2>/dev/null; then
      found+=("$(readlink -f "$cand")")
      break
    fi
  done
done
(IFS=,; echo "${found[*]}")
