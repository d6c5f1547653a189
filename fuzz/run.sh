#!/usr/bin/env bash
# Runs one fuzz target for a bounded time: run.sh <binary> <seed corpus> <work dir> <seconds>.
# The seeds are copied to <work dir>/corpus, which libFuzzer grows; crash, leak, timeout
# and out-of-memory inputs land in <work dir>/artifacts/. The exit status is libFuzzer's:
# 0 when the time ran out with nothing found.
set -euo pipefail
binary=$(realpath "$1")
seeds=$(realpath "$2")
work=$(realpath -m "$3")
seconds=${4:-20}
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
cp -R "$seeds"/. "$work/corpus/"
cd "$work"
# -timeout is per input and generous: the machine may be busy with other tests.
status=0
"$binary" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz: $(basename "$binary") failed (status $status); reproduce with:" >&2
  for f in "$work"/artifacts/*; do
    [ -e "$f" ] && echo "  $binary $f" >&2
  done
fi
exit "$status"
