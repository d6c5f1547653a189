#!/usr/bin/env python3
"""Logging and metrics on the warm path, for docs/benchmarks.md ("Logging and metrics").

Starts `kiln serve` (temp data dir, free port), creates three python3.11 functions
(returns at once; prints one line; prints 1 MB) and drives each with kiln_loadgen in the
same run: warm-invoke p50/p99 at 1 connection for quiet vs one-line, throughput of the
1 MB printer at 2 connections (and the log bytes kept on disk under the cap), and the time
of one GET /metrics. Writes the section into docs/benchmarks.md (replacing the previous
one) unless --no-write.

usage: bench/observe_bench.py [--kiln build/kiln] [--loadgen build/bench/kiln_loadgen]
                              [--duration 5] [--no-write]
"""
import argparse
import datetime
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import harness  # noqa: E402  (server, zips, boto3 client)

QUIET = "def handler(event, context):\n    return 1\n"
ONE_LINE = "def handler(event, context):\n    print('one line of log output')\n    return 1\n"
MEGABYTE = ("import sys\nLINE = 'x' * 1023 + '\\n'\n"
            "def handler(event, context):\n    sys.stdout.write(LINE * 1024)\n    sys.stdout.flush()\n    return 1\n")
LOG_CAP = 64 * 1024 * 1024


def loadgen(path, server, name, connections, duration):
    url = "%s/2015-03-31/functions/%s/invocations" % (server.endpoint, name)
    env = dict(os.environ, KILN_ACCESS_KEY_ID=server.keys[0], KILN_SECRET_ACCESS_KEY=server.keys[1])
    out = subprocess.run([path, "--url", url, "--body", "{}", "--connections", str(connections),
                          "--duration", str(duration), "--warmup", "1", "--sign"],
                         env=env, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError("kiln_loadgen failed: %s" % out.stderr)
    return json.loads(out.stdout)


def scrape_ms(server, n=20):
    best = None
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        t = time.perf_counter()
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
        dt = (time.perf_counter() - t) * 1000
        conn.close()
        best = dt if best is None else min(best, dt)
    return best, len(body)


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"))
    ap.add_argument("--loadgen", default=os.path.join(REPO, "build", "bench", "kiln_loadgen"))
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    os.environ["KILN_BINARY"] = a.kiln
    os.environ["KILN_LOG_MAX_BYTES_PER_FUNCTION"] = str(LOG_CAP)
    server = harness.KilnServer()
    server.start()
    try:
        lam = server.client()
        names = {}
        for key, src in (("quiet", QUIET), ("one_line", ONE_LINE), ("megabyte", MEGABYTE)):
            names[key] = harness.unique_name("bench-" + key.replace("_", ""))
            harness.create_function(lam, names[key], harness.python_zip(src), "python3.11",
                                    "lambda_function.handler", Timeout=30)
        quiet = loadgen(a.loadgen, server, names["quiet"], 1, a.duration)
        one = loadgen(a.loadgen, server, names["one_line"], 1, a.duration)
        quiet2 = loadgen(a.loadgen, server, names["quiet"], 1, a.duration)  # drift check
        mb = loadgen(a.loadgen, server, names["megabyte"], 2, a.duration)
        scrape, scrape_bytes = scrape_ms(server)
        mb_dir = [os.path.join(r) for r, _, _ in os.walk(os.path.join(server.data_dir, "logs"))
                  if r.endswith("/" + names["megabyte"])]
        kept = dir_bytes(mb_dir[0]) if mb_dir else 0
    finally:
        server.cleanup()
    load = os.getloadavg()
    p50 = lambda s: s["latency_us"]["p50"]
    p99 = lambda s: s["latency_us"]["p99"]
    rps = lambda s: s["throughput_rps"]
    mb_rps = rps(mb)
    section = "\n".join([
        "## Logging and metrics",
        "",
        "Written by `bench/observe_bench.py` (%s UTC; load average %.1f %.1f %.1f). python3.11 functions, jail "
        "backend (the server's default), kiln_loadgen closed loop, %g s per row after 1 s of warm-up; every invoke "
        "goes through the metrics observer and the log store." % (
            datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), load[0], load[1], load[2], a.duration),
        "",
        "| function | connections | invokes/s | p50 | p99 |",
        "| --- | --- | --- | --- | --- |",
        "| returns, prints nothing | 1 | %.0f | %.0f µs | %.0f µs |" % (rps(quiet), p50(quiet), p99(quiet)),
        "| prints one line | 1 | %.0f | %.0f µs | %.0f µs |" % (rps(one), p50(one), p99(one)),
        "| returns, prints nothing (again, drift check) | 1 | %.0f | %.0f µs | %.0f µs |" % (
            rps(quiet2), p50(quiet2), p99(quiet2)),
        "| prints 1 MB per invoke | 2 | %.1f (%.1f MB/s of log) | %.0f µs | %.0f µs |" % (
            mb_rps, mb_rps, p50(mb), p99(mb)),
        "",
        "- One printed line costs %+.0f µs at p50 (one-line vs the mean of the two quiet rows)." % (
            p50(one) - (p50(quiet) + p50(quiet2)) / 2),
        "- The 1 MB printer's log group held %.1f MiB on disk at the end, against a cap of %d MiB "
        "(KILN_LOG_MAX_BYTES_PER_FUNCTION); older segments were deleted as it wrote." % (kept / 2**20, LOG_CAP >> 20),
        "- GET /metrics with these three functions: %.2f ms (best of 20), %d bytes." % (scrape, scrape_bytes),
        "",
    ])
    print(section)
    if not a.no_write:
        doc = os.path.join(REPO, "docs", "benchmarks.md")
        text = open(doc).read()
        pattern = re.compile(r"## Logging and metrics\n.*?(?=\n## |\Z)", re.S)
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n", text) if pattern.search(text) \
            else text.rstrip("\n") + "\n\n" + section
        open(doc, "w").write(text)


if __name__ == "__main__":
    main()
