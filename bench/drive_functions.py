"""boto3 side of Kiln's benchmark: creates the echo functions and measures cold starts.

Usage (run by bench/run.sh, with an interpreter that imports boto3):
  drive_functions.py setup ENDPOINT C_BOOTSTRAP OUT.json
      creates bench-c (provided.al2023, the static C echo bootstrap), bench-python
      (python3.11) and bench-node (nodejs20.x), checks that each echoes, and writes
      {"functions": {runtime: name}, "unavailable": {runtime: why}}.
  drive_functions.py update ENDPOINT FUNCTIONS.json RUNS OUT.json
      for each function, RUNS times: UpdateFunctionConfiguration with a new Description
      and the time until LastUpdateStatus is Successful (Kiln initializes a sandbox of
      the new configuration before it serves it, so this includes a sandbox's creation
      and the runtime's init), then the first invoke after it; then RUNS warm invokes,
      so the boto3 client's own cost is visible beside the other numbers.
  drive_functions.py cold ENDPOINT FUNCTIONS.json RUNS IDLE_SECONDS OUT.json
      against a server started with --sandbox-idle-seconds IDLE_SECONDS: RUNS rounds of
      waiting until the idle sandboxes are reaped, then one Invoke (LogType Tail) per
      function, which must start a sandbox on the invoke path: its time and the Init
      Duration of its REPORT line.
Credentials come from KILN_ACCESS_KEY_ID / KILN_SECRET_ACCESS_KEY.
"""
import base64
import io
import json
import os
import re
import sys
import time
import uuid
import zipfile

import boto3
import botocore.config

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/kiln-bench"
PAYLOAD = b'{"bench":"echo","n":1}'

PYTHON_ECHO = "def handler(event, context):\n    return event\n"
NODE_ECHO = "exports.handler = async (event) => event;\n"


def client(endpoint):
    cfg = botocore.config.Config(retries={"total_max_attempts": 1}, read_timeout=120,
                                 connect_timeout=5)
    session = boto3.session.Session(aws_access_key_id=os.environ["KILN_ACCESS_KEY_ID"],
                                    aws_secret_access_key=os.environ["KILN_SECRET_ACCESS_KEY"],
                                    region_name=REGION)
    return session.client("lambda", endpoint_url=endpoint, config=cfg)


def make_zip(name, content, mode=0o644):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, content)
    return buf.getvalue()


def wait_ready(lam, name, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        if (cfg.get("State", "Active") == "Active"
                and cfg.get("LastUpdateStatus", "Successful") != "InProgress"):
            return cfg
        if cfg.get("State") == "Failed" or time.monotonic() > deadline:
            raise RuntimeError("function %s not ready: %r" % (name, cfg))
        time.sleep(0.01)


def invoke(lam, name):
    """One Invoke with LogType Tail: (seconds, init_ms or None, payload bytes)."""
    start = time.perf_counter()
    resp = lam.invoke(FunctionName=name, Payload=PAYLOAD, LogType="Tail")
    body = resp["Payload"].read()
    elapsed = time.perf_counter() - start
    if resp.get("FunctionError") or resp["StatusCode"] != 200:
        raise RuntimeError("invoke %s failed: %s %r" % (name, resp.get("FunctionError"), body[:300]))
    log = base64.b64decode(resp.get("LogResult", "") or b"").decode("utf-8", "replace")
    m = re.search(r"Init Duration: ([0-9.]+) ms", log)
    return elapsed, (float(m.group(1)) if m else None), body


def setup(endpoint, c_bootstrap, out):
    lam = client(endpoint)
    with open(c_bootstrap, "rb") as f:
        c_zip = make_zip("bootstrap", f.read(), 0o755)
    specs = {
        "provided.al2023": ("bench-c", "bootstrap.handler", c_zip),
        "python3.11": ("bench-python", "lambda_function.handler",
                       make_zip("lambda_function.py", PYTHON_ECHO)),
        "nodejs20.x": ("bench-node", "index.handler", make_zip("index.js", NODE_ECHO)),
    }
    result = {"functions": {}, "unavailable": {}, "payload": PAYLOAD.decode()}
    for runtime, (name, handler, zip_bytes) in specs.items():
        try:
            lam.create_function(FunctionName=name, Runtime=runtime, Handler=handler, Role=ROLE,
                                MemorySize=128, Timeout=30, Code={"ZipFile": zip_bytes})
            wait_ready(lam, name)
            _, _, body = invoke(lam, name)
            if json.loads(body) != json.loads(PAYLOAD):
                raise RuntimeError("echo mismatch: %r" % body[:300])
            result["functions"][runtime] = name
        except Exception as e:  # reported in the doc, the rest of the run goes on
            result["unavailable"][runtime] = "%s: %s" % (type(e).__name__, str(e)[:300])
            print("bench: %s unavailable: %s" % (runtime, e), file=sys.stderr)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


def stats_ms(values):
    values = sorted(values)
    if not values:
        return None
    def pct(p):
        k = max(0, min(len(values) - 1, int(-(-p * len(values) // 100)) - 1))
        return round(values[k], 3)
    return {"n": len(values), "p50": pct(50), "p90": pct(90), "min": round(values[0], 3),
            "max": round(values[-1], 3), "mean": round(sum(values) / len(values), 3)}


def wait_ready_tight(lam, name, timeout=60):
    """wait_ready without sleeping: the poll's own round trip (~1 ms) is the resolution."""
    deadline = time.monotonic() + timeout
    while True:
        cfg = lam.get_function_configuration(FunctionName=name)
        if (cfg.get("State", "Active") == "Active"
                and cfg.get("LastUpdateStatus", "Successful") != "InProgress"):
            return cfg
        if cfg.get("State") == "Failed" or cfg.get("LastUpdateStatus") == "Failed":
            raise RuntimeError("update of %s failed: %r" % (name, cfg))
        if time.monotonic() > deadline:
            raise RuntimeError("function %s not ready: %r" % (name, cfg))


def update(endpoint, functions_path, runs, out):
    """Update to ready, then the first invoke after it, then warm invokes."""
    lam = client(endpoint)
    with open(functions_path) as f:
        functions = json.load(f)["functions"]
    result = {}
    for runtime, name in functions.items():
        ready_ms, first_ms, first_init, warm_ms = [], [], 0, []
        try:
            for _ in range(runs):
                t0 = time.perf_counter()
                lam.update_function_configuration(FunctionName=name,
                                                  Description="bench " + uuid.uuid4().hex)
                wait_ready_tight(lam, name)
                ready_ms.append((time.perf_counter() - t0) * 1e3)
                elapsed, init, _ = invoke(lam, name)
                first_ms.append(elapsed * 1e3)
                first_init += init is not None
            for _ in range(runs):
                elapsed, _, _ = invoke(lam, name)
                warm_ms.append(elapsed * 1e3)
            result[runtime] = {"function": name, "update_until_ready_ms": stats_ms(ready_ms),
                               "first_invoke_after_update_ms": stats_ms(first_ms),
                               "first_invoke_reported_init": first_init,
                               "warm_invoke_boto3_ms": stats_ms(warm_ms)}
        except Exception as e:
            result[runtime] = {"function": name, "error": "%s: %s" % (type(e).__name__, str(e)[:300])}
            print("bench: update of %s failed: %s" % (runtime, e), file=sys.stderr)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


def cold(endpoint, functions_path, runs, idle_seconds, out):
    """Cold starts on the invoke path: the server reaps sandboxes idle > idle_seconds
    (checked each second), so after 2 * idle_seconds + 0.3 s without invokes the next
    invoke of each function must start a sandbox. An invoke whose log tail has no Init
    Duration was not cold; it is counted in "not_cold" and left out of the numbers."""
    lam = client(endpoint)
    with open(functions_path) as f:
        functions = json.load(f)["functions"]
    samples = {runtime: {"cold_ms": [], "init_ms": [], "not_cold": 0} for runtime in functions}
    errors = {}
    for _ in range(runs):
        time.sleep(2 * idle_seconds + 0.3)
        for runtime, name in functions.items():
            if runtime in errors:
                continue
            try:
                elapsed, init, _ = invoke(lam, name)
            except Exception as e:
                errors[runtime] = "%s: %s" % (type(e).__name__, str(e)[:300])
                continue
            if init is None:
                samples[runtime]["not_cold"] += 1
            else:
                samples[runtime]["cold_ms"].append(elapsed * 1e3)
                samples[runtime]["init_ms"].append(init)
    result = {}
    for runtime, s in samples.items():
        if runtime in errors:
            result[runtime] = {"error": errors[runtime]}
        else:
            result[runtime] = {"cold_invoke_ms": stats_ms(s["cold_ms"]),
                               "init_duration_ms": stats_ms(s["init_ms"]),
                               "not_cold": s["not_cold"]}
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


def main(argv):
    if len(argv) == 5 and argv[1] == "setup":
        setup(argv[2], argv[3], argv[4])
    elif len(argv) == 6 and argv[1] == "update":
        update(argv[2], argv[3], int(argv[4]), argv[5])
    elif len(argv) == 7 and argv[1] == "cold":
        cold(argv[2], argv[3], int(argv[4]), float(argv[5]), argv[6])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
