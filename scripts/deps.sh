#!/usr/bin/env bash
# Installs the Debian packages herald needs, only those missing. Idempotent and quiet when all
# are present. Usage: scripts/deps.sh [build|test|fuzz|bench]   (the last three add what those need)
set -euo pipefail
mode=${1:-build}

build_pkgs=(gcc make pkg-config libuv1-dev libjansson-dev libssl-dev zlib1g-dev libsqlite3-dev libhiredis-dev libjwt-dev libcurl4-openssl-dev libnghttp2-dev liburing-dev)
test_pkgs=(libcmocka-dev chromium redis-server curl sqlite3 valgrind prometheus systemd nginx nghttp2-client)
fuzz_pkgs=(clang libclang-rt-14-dev)
bench_pkgs=(nginx libnginx-mod-nchan curl redis-server wrk)

want=("${build_pkgs[@]}")
[ "$mode" = test ] && want+=("${test_pkgs[@]}")
[ "$mode" = fuzz ] && want+=("${fuzz_pkgs[@]}")
[ "$mode" = bench ] && want+=("${bench_pkgs[@]}")
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)

missing=()
for pkg in "${want[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
