#!/usr/bin/env bash
# Installs the Debian packages xchan builds with, once; silent when all are present.
# Idempotent: safe to run before every build (the Makefile and CI do).
set -euo pipefail

packages=(meson ninja-build g++ pkg-config python3 libboost-dev libgtest-dev libbenchmark-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

echo "xchan: installing ${missing[*]}" >&2
sudo=""
[[ $(id -u) == 0 ]] || sudo=sudo
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
