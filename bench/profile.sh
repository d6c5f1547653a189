#!/usr/bin/env bash
# Where the time of a warm invoke goes: starts `kiln serve`, creates the echo functions,
# drives one with kiln_loadgen and samples the whole machine with `perf record -a -g`
# (software cpu-clock: this VM has no hardware counters). Prints per-process CPU shares
# and the hottest symbols of kiln serve, the bootstrap and the kernel.
#
# Environment: BUILD_DIR (default build), KILN_SANDBOX_BACKEND (process|jail; default the
# server's), FUNCTION=bench-c (or bench-python, bench-node), CLIENTS=64, SECONDS_=5, OUT (default a temp dir, kept: perf.data is there).
# Needs the binaries built (bench/run.sh builds them) and perf (linux-perf).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$REPO/$BUILD_DIR" ;; esac
CLIENTS=${CLIENTS:-64}
SECONDS_=${SECONDS_:-5}
OUT=${OUT:-$(mktemp -d /tmp/kiln-profile.XXXXXX)}
mkdir -p "$OUT"
export KILN_ACCESS_KEY_ID=AKIAKILNBENCHKEY0001
export KILN_SECRET_ACCESS_KEY=kilnBenchSecretKey/0123456789abcdefghijKLM
command -v perf >/dev/null || { echo "profile: perf not installed (apt-get install linux-perf)" >&2; exit 1; }

C_BOOTSTRAP=$(find "$BUILD_DIR" -name c_bootstrap -type f -perm -u+x 2>/dev/null | head -1 || true)
if [ -z "$C_BOOTSTRAP" ]; then
  C_BOOTSTRAP="$OUT/c_bootstrap"
  gcc -O2 -static -o "$C_BOOTSTRAP" "$REPO/tests/fixtures/c_bootstrap/bootstrap.c"
fi
PYTHON=python3
python3 -c 'import boto3' 2>/dev/null || PYTHON=/root/.pyenv/versions/3.11.7/bin/python3

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ARGS=()
[ -n "${KILN_SANDBOX_BACKEND:-}" ] && ARGS=(--sandbox-backend "$KILN_SANDBOX_BACKEND")
"$BUILD_DIR/kiln" serve --listen "127.0.0.1:$PORT" --data-dir "$OUT/data" "${ARGS[@]}" \
  > "$OUT/kiln.log" 2>&1 &
KILN_PID=$!
trap 'kill $KILN_PID 2>/dev/null || true; wait $KILN_PID 2>/dev/null || true; rm -rf "$OUT/data"' EXIT
for _ in $(seq 1 250); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.02
done
"$PYTHON" "$REPO/bench/drive_functions.py" setup "http://127.0.0.1:$PORT" "$C_BOOTSTRAP" \
  "$OUT/functions.json" 2>/dev/null
URL="http://127.0.0.1:$PORT/2015-03-31/functions/${FUNCTION:-bench-c}/invocations"
LOADGEN="$BUILD_DIR/bench/kiln_loadgen"
"$LOADGEN" --url "$URL" --sign --connections "$CLIENTS" --duration 2 --warmup 2 \
  --body '{"bench":"echo","n":1}' > /dev/null  # fill the sandbox pool
"$LOADGEN" --url "$URL" --sign --connections "$CLIENTS" --duration "$((SECONDS_ + 1))" \
  --warmup 0 --body '{"bench":"echo","n":1}' > "$OUT/load.json" &
LOAD_PID=$!
sleep 0.5
perf record -q -a -g -e cpu-clock -F 999 -o "$OUT/perf.data" -- sleep "$SECONDS_" 2>/dev/null
wait $LOAD_PID
echo "== load during the profile"; cat "$OUT/load.json"
echo "== CPU share by command"
perf report -i "$OUT/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -12
echo "== hottest symbols (kiln serve, bootstrap, kernel), self time"
perf report -i "$OUT/perf.data" --no-children --sort comm,dso,sym --stdio -g none 2>/dev/null |
  grep -E '^ +[0-9]' | head -40
echo "(perf.data in $OUT)"
