#!/usr/bin/env bash
# ensure_venv.sh NAME PYTHON REQUIREMENTS: makes .venv/NAME with PYTHON and the pinned
# packages of REQUIREMENTS (from PyPI), once; again only when a requirements file or
# PYTHON change. Idempotent and quiet when up to date; prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 python=$2 requirements=$3
venv=.venv/$name
stamp=$venv/.xchan-stamp
# (REQUIREMENTS may include others with -r: every file of requirements/ counts.)
want="$(readlink -f "$python") $(cat "$requirements" requirements/*.txt | sha256sum | cut -d' ' -f1)"
if [[ ! -x $venv/bin/python || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "xchan: preparing $venv ($requirements)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
  echo "$want" > "$stamp"
fi
echo "$PWD/$venv/bin/python"
