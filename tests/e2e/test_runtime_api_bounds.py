"""A sandbox cannot starve Kiln or other tenants through its Runtime API, and Kiln's
file descriptors bound how many sandboxes it runs.

- A provided.al2023 bootstrap opens thousands of connections to its Runtime API and
  sends unfinished 6 MB bodies: Kiln closes connections past its per-sandbox limit and
  refuses bodies past its per-sandbox buffer budget, so its descriptors and peak RSS
  stay bounded, and another function's cold start and invokes still work. Kiln runs
  under a descriptor limit of 1,024 here (a systemd default), so an unbounded flood
  would exhaust it.
- Under `prlimit --nofile=200:200`, many concurrent invokes of distinct functions get
  Lambda's 429 TooManyRequestsException (Reason ConcurrentInvocationLimitExceeded)
  when the descriptors are spoken for: never a 500 or a Runtime.InitTimeout; once
  they finish, every function answers again.
"""
import concurrent.futures
import json
import os
import threading
import time

import botocore.exceptions

import functions
import harness

# Runs as the bootstrap. On an invoke {"action": "flood", ...} it forks a flooder that
# keeps what Kiln lets it hold until the sandbox dies, and answers the flooder's counts.
FLOODER = r'''#!/usr/bin/python3
import http.client, json, os, select, socket, sys, time
API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)
PORT = int(PORT)
BASE = "/2018-06-01/runtime"
conn = http.client.HTTPConnection(HOST, PORT)


def call(method, path, body=None):
    conn.request(method, BASE + path, body=body)
    r = conn.getresponse()
    return r, r.read()


def closed(s):
    """Whether the server closed s (readable with EOF or reset)."""
    if not select.select([s], [], [], 0)[0]:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def drop_closed(held):
    """The sockets of `held` the server has not closed (closes the others)."""
    keep = []
    for s in held:
        if closed(s):
            s.close()
        else:
            keep.append(s)
    return keep


def unfinished_bodies(event):
    """Opens connections that each send most of a large body, then stall."""
    size, sent = event["body_bytes"], event["body_sent"]
    chunk = b"x" * sent
    bodies, errors = [], 0
    for i in range(event["bodies"]):
        try:
            s = socket.create_connection((HOST, PORT), timeout=5)
            s.sendall(("POST %s/invocation/flood-%d/response HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: %d\r\n\r\n" % (BASE, i, size)).encode())
            s.sendall(chunk)
            bodies.append(s)
        except OSError:
            errors += 1
    return bodies, errors


def flood(event, out):
    bodies, body_errors = unfinished_bodies(event)
    held, attempts, refused, errors = [], 0, 0, {}
    while attempts < event["connections"]:
        try:
            s = socket.create_connection((HOST, PORT), timeout=5)
            attempts += 1
            held.append(s)
        except OSError as e:  # e.g. EMFILE: drop what the server closed and go on
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            attempts += 1
        if len(held) >= 200:
            time.sleep(0.05)  # give the server a moment to close what it refuses
            before = len(held)
            held = drop_closed(held)
            refused += before - len(held)
    deadline = time.monotonic() + 20  # until the server has closed all but what it allows
    while len(held) > 8 and time.monotonic() < deadline:
        time.sleep(0.05)
        before = len(held)
        held = drop_closed(held)
        refused += before - len(held)
    bodies = drop_closed(bodies)
    out.write(json.dumps({"attempts": attempts, "refused": refused, "held": len(held),
                          "errors": errors, "bodies_sent": len(bodies),
                          "body_errors": body_errors}).encode())
    out.close()
    while True:  # hold everything until the sandbox goes
        time.sleep(60)


while True:
    r, data = call("GET", "/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(data)
    if event.get("action") == "flood":
        rd, wr = os.pipe()
        if os.fork() == 0:
            os.close(rd)
            conn.sock = None
            flood(event, os.fdopen(wr, "wb"))
            os._exit(0)
        os.close(wr)
        with os.fdopen(rd, "rb") as f:
            result = json.loads(f.read() or b"null")
    else:
        result = {"echo": event}
    call("POST", "/invocation/%s/response" % rid, json.dumps(result))
'''

PY = "python3.11"
HANDLER = "lambda_function.handler"
MB = 1024 * 1024


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM for %d" % pid)


class RuntimeApiFloodTest(harness.KilnTestCase):
    server_kwargs = {"nofile": (1024, 1024)}

    def test_flood_is_bounded_and_other_functions_still_start(self):
        pid = self.server.proc.pid
        canary, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER)
        self.assertEqual(json.loads(self.lam.invoke(FunctionName=canary, Payload=b'{"action":"echo","data":1}')
                                    ["Payload"].read()), 1)
        abuser, _ = self.create_function(harness.provided_zip(FLOODER), "provided.al2023", "unused",
                                         MemorySize=512, Timeout=120)
        self.assertEqual(json.loads(self.lam.invoke(FunctionName=abuser, Payload=b'{"n":1}')["Payload"].read()),
                         {"echo": {"n": 1}})
        fds_before, peak_before = fd_count(pid), peak_rss_mb(pid)

        # 3,000 connection attempts (the sandbox's own limit is 1,024 open at once: it
        # closes what Kiln closed and goes on) and 30 bodies of which 6 of 6.5 MB are sent.
        event = {"action": "flood", "connections": 3000, "bodies": 30,
                 "body_bytes": 6500 * 1024, "body_sent": 6 * MB}
        slow = self.server.client(read_timeout=300)
        resp = slow.invoke(FunctionName=abuser, Payload=json.dumps(event).encode())
        out = json.loads(resp["Payload"].read())
        self.assertNotIn("FunctionError", resp, out)
        self.assertEqual(out["attempts"], 3000, out)
        self.assertGreater(out["refused"], 2500, "Kiln kept the connections: %r" % out)

        # The flooder holds all it could: Kiln's descriptors and peak memory stayed bounded.
        fds_during = fd_count(pid)
        self.assertLess(fds_during - fds_before, 64, "Kiln's fds grew from %d to %d: %r"
                        % (fds_before, fds_during, out))
        grown = peak_rss_mb(pid) - peak_before
        self.assertLess(grown, 100, "Kiln's peak RSS grew by %d MB for one sandbox: %r" % (grown, out))

        # Another function's cold start, and the canary, work while the flood is held.
        t0 = time.monotonic()
        other, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER)
        r = self.lam.invoke(FunctionName=other, Payload=b'{"action":"echo","data":2}')
        self.assertNotIn("FunctionError", r)
        self.assertEqual(json.loads(r["Payload"].read()), 2)
        self.assertLess(time.monotonic() - t0, 60, "cold start stalled")
        r = self.lam.invoke(FunctionName=canary, Payload=b'{"action":"echo","data":3}')
        self.assertEqual(json.loads(r["Payload"].read()), 3)
        # The abuser's own Runtime API still serves it (its flood is its own problem).
        r = slow.invoke(FunctionName=abuser, Payload=b'{"n":2}')
        self.assertEqual(json.loads(r["Payload"].read()), {"echo": {"n": 2}})
        self.assertServing()


class FdCapacityTest(harness.KilnTestCase):
    server_kwargs = {"nofile": (200, 200)}
    FUNCTIONS = 12
    HOLD_S = 8  # each invoke holds its sandbox this long: all overlap however slow the start

    def test_out_of_descriptors_is_a_throttle_and_recovers(self):
        names = []
        for _ in range(self.FUNCTIONS):
            name, _ = self.create_function(functions.zip_for("provided.al2023"), "provided.al2023",
                                           "unused.handler", Timeout=60)
            names.append(name)
        lam = self.server.client(max_pool_connections=self.FUNCTIONS, read_timeout=120)
        barrier = threading.Barrier(self.FUNCTIONS)

        def one(name):
            barrier.wait()
            try:
                r = lam.invoke(FunctionName=name,
                               Payload=json.dumps({"action": "sleep", "seconds": self.HOLD_S}).encode())
                payload = json.loads(r["Payload"].read())
                if "FunctionError" in r:
                    return ("function-error", payload)
                return ("ok", payload)
            except botocore.exceptions.ClientError as e:
                return ("error", e.response["ResponseMetadata"]["HTTPStatusCode"],
                        e.response["Error"]["Code"], e.response.get("Reason"))

        with concurrent.futures.ThreadPoolExecutor(self.FUNCTIONS) as pool:
            results = list(pool.map(one, names))
        ok = [r for r in results if r[0] == "ok"]
        throttled = [r for r in results if r[0] == "error" and r[1] == 429]
        self.assertEqual(len(ok) + len(throttled), len(results), "not 200 or 429: %r" % results)
        self.assertTrue(ok, results)
        self.assertTrue(throttled, "200 descriptors fit all %d sandboxes? %r" % (self.FUNCTIONS, results))
        for r in throttled:
            self.assertEqual(r[2:], ("TooManyRequestsException", "ConcurrentInvocationLimitExceeded"), r)

        # Recovered: every function answers, one after another (idle sandboxes of other
        # functions are reclaimed to make room).
        for name in names:
            r = lam.invoke(FunctionName=name, Payload=b'{"action":"echo","data":7}')
            self.assertNotIn("FunctionError", r)
            self.assertEqual(json.loads(r["Payload"].read()), 7)
        self.assertServing()


if __name__ == "__main__":
    harness.main()
