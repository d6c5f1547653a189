#!/usr/bin/env bash
# Asynchronous invocations: events accepted per second (each durable — committed and
# fdatasync'ed with group commit — before its 202) with 64 clients, and events drained
# per second by the poller with a trivial function. Prints a markdown table; with
# WRITE_DOC=1 replaces the "Asynchronous invocations" section of docs/benchmarks.md.
#
# Environment (all optional):
#   BUILD_DIR=build          where kiln and bench/kiln_loadgen are (built beforehand)
#   DURATION=5 WARMUP=1      seconds of load, and of warm-up
#   CLIENTS=64               connections of the load generator
#   KILN_SANDBOX_BACKEND=jail
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$REPO/$BUILD_DIR" ;; esac
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-64}
BACKEND=${KILN_SANDBOX_BACKEND:-jail}
export KILN_ACCESS_KEY_ID=AKIAKILNBENCHKEY0001
export KILN_SECRET_ACCESS_KEY=kilnBenchSecretKey/0123456789abcdefghijKLM
WORK=$(mktemp -d /tmp/kiln-async-bench.XXXXXX)
PY=python3
python3 -c 'import boto3' 2>/dev/null || PY=/root/.pyenv/versions/3.11.7/bin/python3

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BUILD_DIR/kiln" serve --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --sandbox-backend "$BACKEND" \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 500); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.02; done

exec "$PY" "$REPO/bench/async_bench_drive.py" --endpoint "http://127.0.0.1:$PORT" --data-dir "$WORK/data" \
  --loadgen "$BUILD_DIR/bench/kiln_loadgen" --duration "$DURATION" --warmup "$WARMUP" --clients "$CLIENTS" \
  --backend "$BACKEND" --doc "$REPO/docs/benchmarks.md" --write-doc "${WRITE_DOC:-0}"
