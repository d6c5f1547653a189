#!/usr/bin/env bash
# Installs every Debian package Kiln needs to build, test and benchmark.
# Idempotent: installs only what is missing. Run as root (or with sudo available).
set -euo pipefail

PKGS=(
  # build
  build-essential cmake ninja-build ccache pkg-config
  # libraries
  libboost-dev nlohmann-json3-dev libsqlite3-dev libssl-dev libarchive-dev
  libseccomp-dev libcap-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev wrk nginx-light
  # profiling the warm path (scripts/profile_warm_path.sh, bench/profile.sh)
  linux-perf strace
  # the fuzzing tier (fuzz/): clang, and libFuzzer, which Debian ships in libclang-rt-14-dev
  # (only recommended by clang, and recommends are not installed here)
  clang libclang-rt-14-dev
  # building aws-lambda-ric (npm) for the third-party Runtime API client test
  autoconf automake libtool make
  # runtimes and real clients
  python3 awscli zip unzip sqlite3 procps iproute2
  # a real Prometheus text-format parser for the metrics tests
  python3-prometheus-client
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js: any install that provides node and npm will do (NodeSource bundles npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
