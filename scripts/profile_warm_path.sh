#!/usr/bin/env bash
# Per-invoke cost of Kiln's warm invoke path with deterministic instruments: instructions
# (callgrind, user space of kiln serve), system calls (strace -c -f on kiln serve) and
# CPU time (/proc/PID/stat utime+stime of kiln serve and of the sandboxes), each divided
# by the number of invokes kiln_loadgen completed while the instrument was on.
# Wall-clock rates printed by kiln_loadgen are NOT the result here (the tools slow Kiln).
#
#   scripts/profile_warm_path.sh callgrind|strace|cputime
#
# Environment: BUILD_DIR (default build), BACKEND (jail|process; default jail),
# FUNCTION (bench-c | bench-python | bench-node; default bench-c), CLIENTS (default 64),
# SECONDS_ (measured seconds; default 10), WARM_ (warm-up seconds; default 4), OUT
# (default a temp dir, kept), KILN (the kiln binary; default $BUILD_DIR/kiln).
set -euo pipefail
MODE=${1:?usage: profile_warm_path.sh callgrind|strace|cputime}
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$REPO/$BUILD_DIR" ;; esac
BACKEND=${BACKEND:-jail}
FUNCTION=${FUNCTION:-bench-c}
CLIENTS=${CLIENTS:-64}
SECONDS_=${SECONDS_:-10}
OUT=${OUT:-$(mktemp -d /tmp/kiln-warm.XXXXXX)}
mkdir -p "$OUT"
export KILN_ACCESS_KEY_ID=AKIAKILNBENCHKEY0001
export KILN_SECRET_ACCESS_KEY=kilnBenchSecretKey/0123456789abcdefghijKLM
C_BOOTSTRAP="$BUILD_DIR/runtimes/c_bootstrap"
LOADGEN="$BUILD_DIR/bench/kiln_loadgen"
PYTHON=python3
python3 -c 'import boto3' 2>/dev/null || PYTHON=/root/.pyenv/versions/3.11.7/bin/python3

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WRAP=()
case "$MODE" in
  callgrind) WRAP=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p"
                   --separate-threads=no) ;;
  strace | cputime | perf) ;;
  *) echo "unknown mode $MODE" >&2; exit 2 ;;
esac
"${WRAP[@]}" "${KILN:-$BUILD_DIR/kiln}" serve --listen "127.0.0.1:$PORT" --data-dir "$OUT/data" \
  --sandbox-backend "$BACKEND" > "$OUT/kiln.log" 2>&1 &
KILN_PID=$!
trap 'kill $KILN_PID 2>/dev/null || true; wait $KILN_PID 2>/dev/null || true; rm -rf "$OUT/data"' EXIT
for _ in $(seq 1 1500); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.02
done
"$PYTHON" "$REPO/bench/drive_functions.py" setup "http://127.0.0.1:$PORT" "$C_BOOTSTRAP" \
  "$OUT/functions.json" > /dev/null 2>&1
URL="http://127.0.0.1:$PORT/2015-03-31/functions/$FUNCTION/invocations"
load() {  # load SECONDS OUTFILE
  "$LOADGEN" --url "$URL" --sign --connections "$CLIENTS" --duration "$1" --warmup 0 \
    --body '{"bench":"echo","n":1}' > "$2"
}
load "${WARM_:-4}" /dev/null  # fill the sandbox pool (one sandbox per client)
cpu_ticks() {  # utime+stime of kiln serve, and of every other process (sandboxes)
  local kiln=0 sb=0 f
  for f in /proc/[0-9]*/stat; do
    local pid=${f#/proc/}; pid=${pid%/stat}
    local line; line=$(cat "$f" 2>/dev/null) || continue
    local rest=${line##*) }; read -r -a a <<< "$rest"
    local t=$(( a[11] + a[12] ))
    if [ "$pid" = "$KILN_PID" ]; then kiln=$t
    elif grep -qs "c_bootstrap\|bootstrap\|node\|python" "/proc/$pid/cmdline" 2>/dev/null &&
         [ "$(awk '/^PPid/{print $2}' "/proc/$pid/status" 2>/dev/null)" != "$$" ]; then
      sb=$(( sb + t ))
    fi
  done
  echo "$kiln $sb"
}
invokes() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["responses"])' "$1"; }
case "$MODE" in
  callgrind)
    callgrind_control -z "$KILN_PID" > /dev/null
    load "$SECONDS_" "$OUT/load.json"
    callgrind_control -d "$KILN_PID" > /dev/null
    sleep 1
    n=$(invokes "$OUT/load.json")
    f=$(ls -t "$OUT"/callgrind.out.* | head -1)
    total=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1; exit}')
    echo "invokes: $n; kiln serve instructions (user space): $total; per invoke: $(( total / n ))"
    echo "annotate: callgrind_annotate --inclusive=yes $f | less"
    ;;
  perf)
    # CPU-clock samples of kiln serve only (this VM has no hardware counters), with
    # DWARF call graphs so that inclusive shares per component can be read.
    read -r k0 _ < <(cpu_ticks)
    perf record -q -p "$KILN_PID" -e cpu-clock -F 499 --call-graph dwarf,16384 \
      -o "$OUT/perf.data" -- sleep "$SECONDS_" 2>/dev/null &
    PR=$!
    load "$SECONDS_" "$OUT/load.json"
    wait $PR || true
    read -r k1 _ < <(cpu_ticks)
    n=$(invokes "$OUT/load.json")
    echo "invokes: $n; kiln serve CPU per invoke: $(python3 -c "print(round(($k1-$k0)/$(getconf CLK_TCK)/$n*1e6,1))") us"
    echo "inclusive: perf report -i $OUT/perf.data --children --stdio --no-demangle -g none | less"
    ;;
  strace)
    strace -c -f -p "$KILN_PID" -o "$OUT/strace.txt" &
    ST=$!
    sleep 1
    load "$SECONDS_" "$OUT/load.json"
    kill -INT $ST; wait $ST || true
    n=$(invokes "$OUT/load.json")
    echo "invokes: $n"
    awk -v n="$n" 'NR>2 && $NF!="total" && $4 ~ /^[0-9]+$/ {printf "%-16s %8.2f per invoke\n", $NF, $4/n}
                   $NF=="total" {printf "%-16s %8.2f per invoke\n", "TOTAL", $4/n}' "$OUT/strace.txt"
    ;;
  cputime)
    read -r k0 s0 < <(cpu_ticks)
    load "$SECONDS_" "$OUT/load.json"
    read -r k1 s1 < <(cpu_ticks)
    n=$(invokes "$OUT/load.json")
    hz=$(getconf CLK_TCK)
    python3 - "$n" "$hz" "$k0" "$k1" "$s0" "$s1" <<'EOF'
import sys
n, hz, k0, k1, s0, s1 = map(int, sys.argv[1:])
print(f"invokes: {n}")
print(f"kiln serve CPU per invoke: {(k1-k0)/hz/n*1e6:.1f} us")
print(f"sandboxes CPU per invoke:  {(s1-s0)/hz/n*1e6:.1f} us")
EOF
    ;;
esac
echo "(results in $OUT)"
