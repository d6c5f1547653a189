#!/bin/bash
# Usage: build_function.sh OUT_ZIP [CACHE_DIR]
#
# Builds a Lambda zip for runtime provided.al2023 whose bootstrap runs Amazon's
# Node.js runtime interface client (npm aws-lambda-ric) unchanged:
#   bootstrap                          #!/bin/sh, execs /usr/bin/node with the RIC's CLI
#   app.mjs                            handlers: app.handler (echo), app.fails (throws)
#   node_modules/aws-lambda-ric/       package.json, bin/, dist/ (with rapid-client.node)
#
# `npm install aws-lambda-ric` compiles a native addon from bundled curl and
# aws-lambda-cpp sources (about a minute on 2 cores), so the installed tree is cached in
# CACHE_DIR (default ${TMPDIR:-/tmp}/kiln-ric-cache), keyed by RIC version and Node major
# version; later calls only zip. Concurrent callers serialize on a lock in CACHE_DIR.
#
# Exit status: 0 built; 3 a prerequisite is missing here (tool, or npm registry
# unreachable): the message on stderr says which, and tests skip with it; 1 otherwise.
set -euo pipefail

# 3.3.0 is the newest release that supports Node 20 (4.x requires Node >= 22).
RIC_VERSION="${KILN_RIC_VERSION:-3.3.0}"
NODE=/usr/bin/node
HERE="$(cd "$(dirname "$0")" && pwd)"

die() { echo "build_function.sh: $*" >&2; exit 1; }
missing() { echo "build_function.sh: prerequisite missing: $*" >&2; exit 3; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: build_function.sh OUT_ZIP [CACHE_DIR]"
OUT_ZIP="$1"
CACHE_DIR="${2:-${TMPDIR:-/tmp}/kiln-ric-cache}"
case "$OUT_ZIP" in /*) ;; *) OUT_ZIP="$PWD/$OUT_ZIP" ;; esac

# The RIC's preinstall runs curl's buildconf (autoconf, automake, libtoolize) and
# configure/make, then cmake for aws-lambda-cpp; its postinstall runs node-gyp (python3,
# g++). Debian 12 packages: autoconf automake libtool make cmake g++ python3 zip.
[ -x "$NODE" ] || missing "$NODE (Debian package nodejs)"
for tool in npm cmake autoconf automake libtoolize make g++ python3 zip; do
  command -v "$tool" >/dev/null 2>&1 || missing "'$tool' not on PATH (needed to build aws-lambda-ric's native addon; Debian 12: apt-get install autoconf automake libtool make cmake g++ python3 zip)"
done

NODE_MAJOR="$("$NODE" -p 'process.versions.node.split(".")[0]')"
TREE="$CACHE_DIR/ric-$RIC_VERSION-node$NODE_MAJOR"
mkdir -p "$CACHE_DIR"
# npm needs a cache directory; inside CI or a sandbox HOME may be unset.
if [ -z "${HOME:-}" ]; then export npm_config_cache="$CACHE_DIR/npm-cache"; fi

install_ric() {
  local work="$TREE.partial" log="$CACHE_DIR/npm-install-$RIC_VERSION.log"
  rm -rf "$work" && mkdir -p "$work"
  # allowScripts: npm 11 warns about (and later versions may refuse to run) dependency
  # install scripts not approved here; the RIC's native build is its install script.
  cat >"$work/package.json" <<EOF
{"name": "kiln-ric-function", "version": "1.0.0", "private": true,
 "dependencies": {"aws-lambda-ric": "$RIC_VERSION"},
 "allowScripts": {"aws-lambda-ric": true}}
EOF
  echo "build_function.sh: npm install aws-lambda-ric@$RIC_VERSION (log: $log)" >&2
  local start=$SECONDS
  # MAKEFLAGS: the curl and aws-lambda-cpp builds run plain `make`; two jobs at most.
  if ! (cd "$work" && MAKEFLAGS=-j2 npm install --no-audit --no-fund --loglevel=warn) \
      >"$log" 2>&1; then
    if ! npm view "aws-lambda-ric@$RIC_VERSION" version >/dev/null 2>&1; then
      missing "the npm registry does not serve aws-lambda-ric@$RIC_VERSION here (npm view failed; install log: $log)"
    fi
    tail -n 30 "$log" >&2
    die "npm install aws-lambda-ric@$RIC_VERSION failed (log: $log)"
  fi
  local addon="$work/node_modules/aws-lambda-ric/dist/rapid-client.node"
  [ -f "$addon" ] || die "npm install did not build $addon (install scripts skipped? log: $log)"
  # The addon reads AWS_LAMBDA_RUNTIME_API when it loads (and aborts if it is unset);
  # loading does not connect, so any address will do for this check.
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9 "$NODE" -e 'require(process.argv[1])' "$addon" ||
    die "$addon does not load"
  # The RIC's postinstall cleanup leaves the unpacked curl and aws-lambda-cpp trees
  # (its glob misses them); they are ~150 MB of build sources.
  rm -rf "$work/node_modules/aws-lambda-ric/deps"
  echo "build_function.sh: built aws-lambda-ric@$RIC_VERSION in $((SECONDS - start)) s" >&2
  rm -rf "$TREE" && mv "$work" "$TREE"
}

stage_and_zip() {
  local stage ric="$TREE/node_modules/aws-lambda-ric"
  stage="$(mktemp -d "$CACHE_DIR/stage.XXXXXX")"
  trap 'rm -rf "$stage"' RETURN
  install -m 0755 "$HERE/function/bootstrap" "$stage/bootstrap"
  install -m 0644 "$HERE/function/app.mjs" "$stage/app.mjs"
  # Only what runs: the RIC's dist/index.mjs needs Node built-ins and
  # dist/rapid-client.node (which links only libc, libstdc++, libgcc_s, libm). Its npm
  # dependencies node-gyp and node-addon-api, and deps/ (the curl and aws-lambda-cpp
  # sources), serve the build alone.
  mkdir -p "$stage/node_modules/aws-lambda-ric"
  cp -r "$ric/package.json" "$ric/bin" "$ric/dist" "$ric/LICENSE" "$ric/NOTICE" \
    "$ric/THIRD-PARTY-LICENSES" "$stage/node_modules/aws-lambda-ric/"
  mkdir -p "$(dirname "$OUT_ZIP")"
  rm -f "$OUT_ZIP"
  # zip keeps the Unix mode bits, so bootstrap stays executable after extraction.
  (cd "$stage" && zip -q -r -X "$OUT_ZIP" .)
}

exec 9>"$CACHE_DIR/.lock"
flock 9
[ -f "$TREE/node_modules/aws-lambda-ric/dist/rapid-client.node" ] || install_ric
stage_and_zip
echo "$OUT_ZIP"
