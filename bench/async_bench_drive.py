"""Drives one async benchmark run against a running `kiln serve` (see async_bench.sh)."""
import argparse
import glob
import io
import json
import os
import re
import subprocess
import time
import zipfile

import boto3
import botocore.config

# A trivial function: returns its event.
FUNCTION = "def handler(event, context):\n    return event\n"


def function_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("lambda_function.py", FUNCTION)
    return buf.getvalue()


def ends(data_dir, name):
    """Invocations finished so far: END lines in the function's logs."""
    n = 0
    for path in glob.glob(os.path.join(data_dir, "logs", "*", name, "*.log")):
        with open(path, "rb") as f:
            n += f.read().count(b" END RequestId: ")
    return n


def main():
    ap = argparse.ArgumentParser()
    for a in ("endpoint", "data-dir", "loadgen", "backend", "doc"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--write-doc", default="0")
    a = ap.parse_args()
    lam = boto3.client("lambda", endpoint_url=a.endpoint, region_name="us-east-1",
                       aws_access_key_id=os.environ["KILN_ACCESS_KEY_ID"],
                       aws_secret_access_key=os.environ["KILN_SECRET_ACCESS_KEY"],
                       config=botocore.config.Config(retries={"total_max_attempts": 1}))
    name = "async-bench"
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="lambda_function.handler",
                        Role="arn:aws:iam::123456789012:role/bench", Code={"ZipFile": function_zip()})
    lam.invoke(FunctionName=name, Payload=b"{}")  # warm one sandbox
    before = ends(a.data_dir, name)
    url = "%s/2015-03-31/functions/%s/invocations" % (a.endpoint, name)
    t0 = time.time()
    out = subprocess.run([a.loadgen, "--url", url, "--sign", "--header", "X-Amz-Invocation-Type: Event",
                          "--body", '{"bench":true}', "--connections", str(a.clients), "--threads", "2",
                          "--duration", str(a.duration), "--warmup", str(a.warmup)],
                         capture_output=True, text=True, check=True)
    t_load_end = time.time()
    load = json.loads(out.stdout)
    drained_during = ends(a.data_dir, name) - before
    # Every 202 is one event to drain (warm-up included): wait until the END count stops
    # short of nothing, i.e. the queue is empty (no new END for 5 s means done).
    last, last_change = drained_during, time.time()
    while time.time() - last_change < 5:
        time.sleep(0.5)
        n = ends(a.data_dir, name) - before
        if n != last:
            last, last_change = n, time.time()
    t_drained = last_change
    drained_after = last - drained_during
    drain_rate = drained_after / max(1e-9, t_drained - t_load_end)
    status = load.get("status_counts") or load.get("statuses") or {}
    row = {
        "clients": a.clients,
        "accepted_per_s": load.get("throughput_rps") or load.get("rps") or load.get("requests_per_second"),
        "p50_ms": load["latency_us"]["p50"] / 1000.0, "p99_ms": load["latency_us"]["p99"] / 1000.0,
        "non_2xx": load.get("non_2xx"), "socket_errors": load.get("socket_errors"),
        "drained_total": last, "drained_during_load": drained_during,
        "drain_per_s_after_load": round(drain_rate, 1), "raw": load,
    }
    print(json.dumps(row, indent=2))
    table = ("| clients | accepted/s (durable before 202) | p50 / p99 accept latency | "
             "drained during load | drained/s after load (backlog, %s backend) |\n"
             "| --- | --- | --- | --- | --- |\n"
             "| %d | %s | %s / %s ms | %d | %.0f |\n"
             % (a.backend, a.clients, _fmt(row["accepted_per_s"]), _fmt(row["p50_ms"]), _fmt(row["p99_ms"]),
                drained_during, drain_rate))
    print(table)
    if a.write_doc == "1":
        write_doc(a.doc, table, a)


def _fmt(v):
    return "%.0f" % v if isinstance(v, (int, float)) and v >= 100 else ("%.2f" % v if isinstance(v, float) else str(v))


def write_doc(path, table, a):
    section = ("## Asynchronous invocations\n\n"
               "`bench/async_bench.sh` (%s, %.0f s of load after %.0f s warm-up): kiln_loadgen sends signed "
               "`Invoke` with `InvocationType: Event` on %d connections; every 202 means the event was "
               "committed and fdatasync'ed in SQLite (WAL, synchronous=FULL) by the group-commit writer. "
               "A trivial Python function drains the queue meanwhile (the poller runs at most 2 x cores "
               "events at once). Target: at least 5,000 accepted/s with 64 clients.\n\n%s\n"
               % (time.strftime("%Y-%m-%d"), a.duration, a.warmup, a.clients, table))
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    pattern = re.compile(r"^## Asynchronous invocations\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda m: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    open(path, "w").write(text)


if __name__ == "__main__":
    main()
