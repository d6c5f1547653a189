"""Helpers of the asynchronous invocation tests (test_async*.py)."""
import glob
import json
import os
import time

from harness import python_zip

# Prints one line per attempt: "EVENT <id> <request id>"; fails on {"fail": true};
# sleeps {"sleep": s}; destination records are printed whole: "RECORD <json>".
RECORDER = r'''
import json, time
def handler(event, context):
    if isinstance(event, dict) and "requestContext" in event and "version" in event:
        print("RECORD " + json.dumps(event, sort_keys=True), flush=True)
        if event.get("requestPayload", {}).get("dest_sleep"):
            time.sleep(event["requestPayload"]["dest_sleep"])
        return "recorded"
    print("EVENT %s %s" % (event.get("id"), context.aws_request_id), flush=True)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("boom %s" % event.get("id"))
    return {"ok": event.get("id")}
'''


def recorder_zip():
    return python_zip(RECORDER)


def log_lines(server, function_name):
    """Every log message of a function, in file order: [(epoch_ms, message)]."""
    out = []
    for path in sorted(glob.glob(os.path.join(server.data_dir, "logs", "*", function_name, "*.log"))):
        with open(path, "rb") as f:
            for raw in f.read().decode("utf-8", "replace").splitlines():
                ms, _, msg = raw.partition(" ")
                if ms.isdigit():
                    out.append((int(ms), msg))
    return out


def event_runs(server, function_name):
    """{event id: [(epoch_ms, request id), ...]} from the recorder's EVENT lines."""
    runs = {}
    for ms, msg in log_lines(server, function_name):
        if msg.startswith("EVENT "):
            parts = msg.split()
            if len(parts) >= 3:
                runs.setdefault(parts[1], []).append((ms, parts[2]))
    return runs


def records(server, function_name):
    """Destination records the recorder received, parsed."""
    return [json.loads(msg[len("RECORD "):]) for _, msg in log_lines(server, function_name)
            if msg.startswith("RECORD ")]


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls predicate() until it returns a true value (returned) or fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


def send_event(lam, name, event):
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())
    assert r["StatusCode"] == 202, r
    return r["ResponseMetadata"]["RequestId"]
