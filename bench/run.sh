#!/usr/bin/env bash
# Kiln's benchmark: warm-invoke latency and throughput at 1, 8 and 64 clients for a C,
# a Python and a Node echo function, cold starts of each runtime, and the floors of the
# same run (nginx on loopback; fork+exec of /bin/true, python3 -c pass, node -e 0).
# Writes docs/benchmarks.md (and the raw JSON beside the run in $OUT_DIR).
#
# Environment (all optional):
#   BUILD_DIR=build          build dir to use (configured via `make configure`)
#   KILN_BENCH_NO_BUILD=1    use the binaries already in BUILD_DIR
#   BACKENDS="jail process"  sandbox backends, each against a fresh server; the first is
#                            the headline (KILN_SANDBOX_BACKEND=X alone means BACKENDS=X)
#   DURATION=5 WARMUP=2      seconds per load point: measured, and warm-up (+ clients/16)
#   CONCURRENCY="1 8 64"     client counts
#   COLD_RUNS=10             cold starts and updates per runtime
#   OUT_DIR=                 where the raw JSON goes (default: a temp dir, kept)
#   DOC=docs/benchmarks.md   the report written
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$REPO/$BUILD_DIR" ;; esac
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONCURRENCY=${CONCURRENCY:-"1 8 64"}
COLD_RUNS=${COLD_RUNS:-10}
BACKENDS=${BACKENDS:-${KILN_SANDBOX_BACKEND:-jail process}}
DOC=${DOC:-$REPO/docs/benchmarks.md}
WORK=$(mktemp -d /tmp/kiln-bench.XXXXXX)
OUT_DIR=${OUT_DIR:-$WORK/results}
mkdir -p "$OUT_DIR"
export KILN_ACCESS_KEY_ID=AKIAKILNBENCHKEY0001
export KILN_SECRET_ACCESS_KEY=kilnBenchSecretKey/0123456789abcdefghijKLM

log() { printf 'bench: %s\n' "$*" >&2; }

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"/data-* "$WORK/nginx/tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {  # wait_port PORT PID
  for _ in $(seq 1 500); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}

# ---------------------------------------------------------------- build
if [ "${KILN_BENCH_NO_BUILD:-}" != 1 ]; then
  log "building in $BUILD_DIR"
  make -s -C "$REPO" configure BUILD_DIR="$BUILD_DIR" >&2
  targets=(kiln kiln_loadgen kiln_spawn_floor)
  for optional in c_bootstrap python_runtime_bytecode jail_bench; do
    if cmake --build "$BUILD_DIR" --target help 2>/dev/null | grep -q "^$optional:"; then
      targets+=("$optional")
    fi
  done
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${targets[@]}" >&2
fi
KILN="$BUILD_DIR/kiln"
LOADGEN="$BUILD_DIR/bench/kiln_loadgen"
SPAWN="$BUILD_DIR/bench/kiln_spawn_floor"
for b in "$KILN" "$LOADGEN" "$SPAWN"; do
  [ -x "$b" ] || { log "missing $b (build it or unset KILN_BENCH_NO_BUILD)"; exit 1; }
done

# The static C echo bootstrap: the c_bootstrap target if the build has it, else built here.
C_BOOTSTRAP="$BUILD_DIR/runtimes/c_bootstrap"
[ -x "$C_BOOTSTRAP" ] || C_BOOTSTRAP=$(find "$BUILD_DIR" -name c_bootstrap -type f -perm -u+x 2>/dev/null | head -1 || true)
if [ -z "$C_BOOTSTRAP" ]; then
  C_BOOTSTRAP="$WORK/c_bootstrap"
  gcc -O2 -static -o "$C_BOOTSTRAP" "$REPO/tests/fixtures/c_bootstrap/bootstrap.c"
fi

PYTHON=""
for py in python3 /root/.pyenv/versions/3.11.7/bin/python3; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import boto3' >/dev/null 2>&1; then
    PYTHON=$py; break
  fi
done
[ -n "$PYTHON" ] || { log "no python3 with boto3 found"; exit 1; }

# ---------------------------------------------------------------- floors
cut -d' ' -f1-3 /proc/loadavg > "$OUT_DIR/loadavg_start.txt"
date -u '+%Y-%m-%d %H:%M UTC' > "$OUT_DIR/date.txt"
{ git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown; } > "$OUT_DIR/commit.txt"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "(with uncommitted changes in the work tree)" >> "$OUT_DIR/commit.txt"
fi
log "spawn floors"
"$SPAWN" --runs 200 -- /bin/true > "$OUT_DIR/spawn_true.json"
"$SPAWN" --runs 100 --namespaces -- /bin/true > "$OUT_DIR/spawn_true_ns.json" ||
  log "namespaces floor failed (no user namespaces?)"
"$SPAWN" --runs 30 -- /usr/bin/python3 -c pass > "$OUT_DIR/spawn_python.json"
if command -v node >/dev/null; then
  "$SPAWN" --runs 20 -- "$(command -v node)" -e 0 > "$OUT_DIR/spawn_node.json"
fi

# The jail's own numbers (issue 3): creation + teardown against its floors, creation
# rate, idle memory. jail_bench belongs to src/sandbox; its Markdown goes in as is.
JAIL_BENCH="$BUILD_DIR/src/sandbox/jail_bench"
case " $BACKENDS " in
  *" jail "*)
    if [ -x "$JAIL_BENCH" ]; then
      log "jail_bench --markdown"
      timeout 120 "$JAIL_BENCH" --markdown --runtime "$C_BOOTSTRAP" > "$OUT_DIR/jail_bench.md" \
        2> "$OUT_DIR/jail_bench.err" || log "jail_bench failed (see $OUT_DIR/jail_bench.err)"
    fi ;;
esac

log "nginx floor"
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx/tmp"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { default_type application/json; return 200 '{}'; }
  }
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_port "$NGINX_PORT" "$NGINX_PID" || { log "nginx did not start"; cat "$WORK/nginx/error.log" >&2; exit 1; }

PAYLOAD='{"bench":"echo","n":1}'
load() {  # load DIR NAME URL CONNECTIONS [loadgen args...]
  # Warm-up grows with the client count (WARMUP + c/16 s): at 64 clients it must cover
  # the start of 64 sandboxes, which for Node is seconds of CPU on 2 cores.
  local dir=$1 name=$2 url=$3 c=$4; shift 4
  local warmup=$(( WARMUP + c / 16 ))
  "$LOADGEN" --url "$url" --connections "$c" --duration "$DURATION" --warmup "$warmup" \
    --body "$PAYLOAD" "$@" > "$dir/load_${name}_c${c}.json" ||
    log "load $name c=$c measured nothing"
}
for c in $CONCURRENCY; do
  log "floor c=$c"
  load "$OUT_DIR" floor "http://127.0.0.1:$NGINX_PORT/" "$c"
done
kill "$NGINX_PID" 2>/dev/null || true

# ---------------------------------------------------------------- kiln
# run_backend BACKEND: a fresh `kiln serve` with that sandbox backend; results in
# $OUT_DIR/BACKEND/. A backend that cannot start is recorded as such, not fatal.
run_backend() {
  local backend=$1 dir="$OUT_DIR/$1" port
  mkdir -p "$dir"
  port=$(free_port)
  "$KILN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/data-$backend" \
    --sandbox-backend "$backend" > "$WORK/kiln-$backend.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  if ! wait_port "$port" "$pid"; then
    log "kiln with backend $backend did not start"
    tail -5 "$WORK/kiln-$backend.log" > "$dir/start_failure.log"
    return 0
  fi
  log "kiln on port $port, backend $backend"
  local endpoint="http://127.0.0.1:$port"
  "$PYTHON" "$REPO/bench/drive_functions.py" setup "$endpoint" "$C_BOOTSTRAP" "$dir/functions.json"
  local functions
  functions=$("$PYTHON" -c 'import json,sys; f=json.load(open(sys.argv[1]))["functions"]; print(" ".join("%s=%s" % kv for kv in f.items()))' "$dir/functions.json")
  for entry in $functions; do
    local runtime=${entry%%=*} fn=${entry#*=}
    for c in $CONCURRENCY; do
      log "$backend: warm $runtime c=$c"
      load "$dir" "$runtime" "$endpoint/2015-03-31/functions/$fn/invocations" "$c" --sign
    done
  done
  log "$backend: updates ($COLD_RUNS per runtime)"
  "$PYTHON" "$REPO/bench/drive_functions.py" update "$endpoint" "$dir/functions.json" \
    "$COLD_RUNS" "$dir/update.json"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true

  # Cold starts on the invoke path: a second server that reaps sandboxes idle for 1 s.
  port=$(free_port)
  "$KILN" serve --listen "127.0.0.1:$port" --data-dir "$WORK/data-$backend-cold" \
    --sandbox-backend "$backend" --sandbox-idle-seconds 1 >> "$WORK/kiln-$backend.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if wait_port "$port" "$pid"; then
    endpoint="http://127.0.0.1:$port"
    log "$backend: cold starts ($COLD_RUNS per runtime, ~2.5 s each round)"
    "$PYTHON" "$REPO/bench/drive_functions.py" setup "$endpoint" "$C_BOOTSTRAP" \
      "$dir/functions-cold.json" &&
    "$PYTHON" "$REPO/bench/drive_functions.py" cold "$endpoint" "$dir/functions-cold.json" \
      "$COLD_RUNS" 1 "$dir/cold.json"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -E 'kiln (warn|error):' "$WORK/kiln-$backend.log" | tail -20 > "$dir/kiln_warnings.log" || true
  rm -rf "$WORK/data-$backend" "$WORK/data-$backend-cold"
}

for backend in $BACKENDS; do
  run_backend "$backend"
done
cut -d' ' -f1-3 /proc/loadavg > "$OUT_DIR/loadavg_end.txt"

# ---------------------------------------------------------------- report
python3 "$REPO/bench/report.py" --results "$OUT_DIR" --backends "$BACKENDS" \
  --repo "$REPO" --duration "$DURATION" --warmup "$WARMUP" --out "$DOC" \
  --notes "$REPO/bench/profile_notes.md"
log "wrote $DOC (raw results in $OUT_DIR)"
