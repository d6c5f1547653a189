"""Hostile input never stops Kiln (issue 10, "Crashes").

Each test sends what once crashed the process, checks the answer is a Lambda error
with a valid JSON body, and checks that the server still serves a normal boto3 call.
The sandbox attacks then restart Kiln on the same data directory: what a runtime sent
is stored (registry records, async events), and a crash there would repeat forever.
"""
import hashlib
import json
import os
import random
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from async_util import log_lines, wait_for  # noqa: E402

DEPTH = 100000
DEEP = b"[" * DEPTH + b"]" * DEPTH

# A provided.al2023 runtime speaking the Runtime API with raw bytes. MODE picks the
# misbehaviour: "bad_utf8_response" answers every event with invalid UTF-8;
# "bad_utf8_init_error" posts invalid UTF-8 to /runtime/init/error; "ok" answers
# "ok" without parsing the event; "recorder" prints what a destination record holds.
BOOTSTRAP = r'''#!/usr/bin/python3
import hashlib, http.client, os, sys
HOST, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
BASE = "/2018-06-01/runtime"
MODE = os.environ.get("MODE", "ok")
conn = http.client.HTTPConnection(HOST, int(PORT))

def call(method, path, body=None, headers=None):
    conn.request(method, BASE + path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r, r.read()

if MODE == "bad_utf8_init_error":
    call("POST", "/init/error",
         b'{"errorMessage": "bad \xff\xfe bytes", "errorType": "Custom.\xc3\x28"}',
         {"Lambda-Runtime-Function-Error-Type": "Custom.Bad"})
    sys.exit(1)

DEEP = b"[" * 100000 + b"]" * 100000
while True:
    r, data = call("GET", "/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    if MODE == "bad_utf8_response":
        body = b'"\xff\xfe not utf-8 \xc3\x28"'
    elif MODE == "recorder":
        deep = (b'"requestPayload":' + DEEP) in data
        print("RECORD bytes=%d deep=%s sha=%s head=%r" % (
            len(data), deep, hashlib.sha256(data).hexdigest()[:12], data[:300]), flush=True)
        body = b'"recorded"'
    else:
        body = b'"ok"'
    call("POST", "/invocation/%s/response" % rid, body)
'''


def bootstrap_zip():
    return harness.provided_zip(BOOTSTRAP)


# ---------------------------------------------------------------- raw sockets

def raw_exchange(port, data, timeout=30):
    """Sends bytes, half-closes, reads until the server closes: the raw response bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first (a malformed head); read what it sent
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        except (socket.timeout, ConnectionResetError):
            pass
        return b"".join(chunks)


def parse_response(raw):
    """(status, {lower-case header: value}, body) of the first response in raw."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    n = int(headers.get("content-length", len(body)))
    return status, headers, body[:n]


def request_bytes(method, path, headers, body=b""):
    lines = [b"%s %s HTTP/1.1" % (method, path)]
    for k, v in headers:
        lines.append(k + b": " + v)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def signed_bytes(server, method, path, body=b"", extra=None):
    """A valid SigV4-signed request (botocore's signer) as raw bytes, Connection: close."""
    headers = dict(extra or {})
    signed = harness.sign(server, method, path, body, headers)
    hs = [(k.encode(), v.encode() if isinstance(v, str) else v) for k, v in signed.items()]
    hs.append((b"Host", b"127.0.0.1:%d" % server.port))
    hs.append((b"Content-Length", str(len(body)).encode()))
    hs.append((b"Connection", b"close"))
    return request_bytes(method.encode(), path.encode(), hs, body)


def mutate(rng, data):
    """A few random byte edits: flip, insert, delete, or overwrite with hostile bytes."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        i = rng.randrange(len(b))
        op = rng.randrange(5)
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i:i] = bytes([rng.randrange(256)])
        elif op == 2:
            del b[i]
        elif op == 3:
            b[i] = rng.choice(b"\xff\xfe\xc3\x80\x00%\"\\{[")
        else:
            b[i:i] = rng.choice([b"%ff", b"\xff\xfe", b"%c3%28", b"[" * 64, b"99999999999999999999"])
    return bytes(b)


class HostileRequestsTest(harness.KilnTestCase):
    """Requests to the Lambda API frontend (no sandbox needed)."""

    def assertJsonError(self, raw, statuses):
        status, headers, body = parse_response(raw)
        self.assertIn(status, statuses, raw[:800])
        doc = json.loads(body.decode("utf-8"))  # strict: valid UTF-8 and valid JSON
        self.assertIn("message", doc)
        self.assertTrue(headers.get("x-amzn-errortype"), raw[:800])
        return status, headers, doc

    def test_code_link_with_out_of_range_expires_is_refused(self):
        raw = raw_exchange(self.server.port, request_bytes(
            b"GET", b"/kiln/code/x/y.zip?expires=9999999999999999999&signature=00",
            [(b"Host", b"127.0.0.1"), (b"Connection", b"close")]))
        self.assertJsonError(raw, (403,))
        for expires in (b"-1", b"18446744073709551616", b"+5", b""):
            raw = raw_exchange(self.server.port, request_bytes(
                b"GET", b"/kiln/code/x/y.zip?expires=" + expires + b"&signature=00",
                [(b"Host", b"127.0.0.1"), (b"Connection", b"close")]))
            self.assertJsonError(raw, (403,))
        self.assertServing()

    def test_invalid_utf8_authorization_header_gets_json_error(self):
        raw = raw_exchange(self.server.port, request_bytes(
            b"GET", b"/2015-03-31/functions/",
            [(b"Host", b"127.0.0.1"), (b"Authorization", b"\xff\xfe"), (b"Connection", b"close")]))
        self.assertJsonError(raw, (400, 403))
        raw = raw_exchange(self.server.port, request_bytes(
            b"GET", b"/2015-03-31/functions/",
            [(b"Host", b"127.0.0.1"), (b"Connection", b"close"),
             (b"Authorization", b"AWS4-HMAC-SHA256 Credential=\xff\xfe/20260101/us-east-1/lambda/aws4_request, "
                                b"SignedHeaders=host, Signature=00")]))
        self.assertJsonError(raw, (400, 403))
        self.assertServing()

    def test_signed_path_with_invalid_utf8_gets_json_error(self):
        for path in ("/2015-03-31/functions/%ff/configuration", "/2015-03-31/functions/%c3%28",
                     "/2015-03-31/functions/a/invocations?Qualifier=%ff%fe",
                     "/2015-03-31/functions/%ff%fe/versions?MaxItems=99999999999999999999"):
            raw = raw_exchange(self.server.port, signed_bytes(self.server, "GET", path))
            self.assertJsonError(raw, (400, 403, 404))
        self.assertServing()

    def test_numbers_out_of_range_get_lambda_errors(self):
        huge = "99999999999999999999999"
        for path in ("/2015-03-31/functions/?MaxItems=" + huge,
                     "/2015-03-31/functions/?MaxItems=-1",
                     "/2018-10-31/layers/x/versions?MaxItems=" + huge,
                     "/2018-10-31/layers/x/versions/" + huge):
            raw = raw_exchange(self.server.port, signed_bytes(self.server, "GET", path))
            self.assertJsonError(raw, (400, 404))
        self.assertServing()

    def test_hundreds_of_mutated_signed_requests_leave_kiln_serving(self):
        name, _ = self.create_function(harness.make_zip({"bootstrap": (b"#!/bin/sh\nexit 0\n", 0o755)}),
                                       "provided.al2023", "unused.handler", wait=False)
        fn = "/2015-03-31/functions/" + name
        bases = [
            ("GET", "/2015-03-31/functions/?MaxItems=5", b""),
            ("GET", fn + "/configuration", b""),
            ("PUT", fn + "/configuration", b'{"Description": "d", "Timeout": 5}'),
            ("GET", fn + "/versions?MaxItems=3", b""),
            ("PUT", fn + "/event-invoke-config", b'{"MaximumRetryAttempts": 1}'),
            ("POST", "/2017-03-31/tags/arn:aws:lambda:us-east-1:123456789012:function:" + name,
             b'{"Tags": {"k": "v"}}'),
        ]
        rng = random.Random(20261205)
        sent = 0
        for i in range(300):
            method, path, body = bases[i % len(bases)]
            if i % 2 == 0:
                # Mutated after signing: reaches the parser and the SigV4 check.
                data = mutate(rng, signed_bytes(self.server, method, path, body))
            else:
                # Mutated, then signed: reaches the router and the operations.
                m = mutate(rng, method.encode()) if rng.random() < 0.2 else method.encode()
                p = mutate(rng, path.encode()) if rng.random() < 0.6 else path.encode()
                b = mutate(rng, body) if body and rng.random() < 0.6 else body
                try:
                    data = signed_bytes(self.server, m.decode("latin-1"), p.decode("latin-1"), b)
                except Exception:  # botocore cannot sign it: send it mutated as is
                    data = mutate(rng, signed_bytes(self.server, method, path, body))
            raw_exchange(self.server.port, data, timeout=30)
            sent += 1
            self.assertTrue(self.server.running(), "kiln died after %d mutated requests:\n%s"
                            % (sent, self.server.log_tail()))
        self.assertServing()
        self.lam.get_function_configuration(FunctionName=name)


class HostileSandboxTest(harness.KilnTestCase):
    """What a runtime sends from inside its sandbox; then a restart on the same data."""

    def arn(self, name):
        return self.lam.get_function_configuration(FunctionName=name)["FunctionArn"]

    def fn(self, mode, wait=True, **kw):
        return self.create_function(bootstrap_zip(), "provided.al2023", "unused.handler", wait=wait,
                                    Environment={"Variables": {"MODE": mode}}, **kw)[0]

    def with_destination(self, name, destination):
        self.lam.put_function_event_invoke_config(
            FunctionName=name, MaximumRetryAttempts=0,
            DestinationConfig={"OnSuccess": {"Destination": self.arn(destination)},
                               "OnFailure": {"Destination": self.arn(destination)}})

    def recorded(self, recorder):
        return [m for _, m in log_lines(self.server, recorder) if m.startswith("RECORD ")]

    def restart_and_check(self, names):
        self.server.stop()
        self.server.start()
        self.lam = self.server.client()
        self.assertServing()
        for n in names:
            self.lam.get_function_configuration(FunctionName=n)

    def test_sandbox_attacks_survive_restart(self):
        recorder = self.fn("recorder")

        # 1. A response of invalid UTF-8 to an Event invoke with a destination.
        bad = self.fn("bad_utf8_response")
        self.with_destination(bad, recorder)
        r = self.lam.invoke(FunctionName=bad, InvocationType="Event", Payload=b'{"n": 1}')
        self.assertEqual(r["StatusCode"], 202)
        wait_for(lambda: self.recorded(recorder), 120, "the record of the invalid UTF-8 response")
        self.assertTrue(self.server.running(), self.server.log_tail())
        sync = self.lam.invoke(FunctionName=bad, Payload=b'{"n": 2}')
        self.assertEqual(sync["StatusCode"], 200)

        # 2. A 100,000-deep Event payload with a destination: the record embeds it as is.
        ok = self.fn("ok")
        self.with_destination(ok, recorder)
        r = self.lam.invoke(FunctionName=ok, InvocationType="Event", Payload=DEEP)
        self.assertEqual(r["StatusCode"], 202)
        wait_for(lambda: any("deep=True" in m for m in self.recorded(recorder)), 120,
                 "the record of the deep payload")
        self.assertTrue(self.server.running(), self.server.log_tail())

        # 3. Invalid UTF-8 posted to /runtime/init/error during CreateFunction.
        failed = self.fn("bad_utf8_init_error", wait=False)
        cfg = wait_for(lambda: (lambda c: c if "Failed" in (c.get("State"), c.get("LastUpdateStatus")) else None)(
            self.lam.get_function_configuration(FunctionName=failed)), 120, "the failed create")
        self.assertIn("\ufffd", cfg.get("StateReason", "") + cfg.get("LastUpdateStatusReason", ""), cfg)
        self.assertTrue(self.server.running(), self.server.log_tail())

        # What they left behind (records, events) is read again after a restart.
        r = self.lam.invoke(FunctionName=bad, InvocationType="Event", Payload=b'{"n": 3}')
        self.restart_and_check([recorder, bad, ok, failed])
        cfg = self.lam.get_function_configuration(FunctionName=failed)
        self.assertIn("Failed", (cfg.get("State"), cfg.get("LastUpdateStatus")), cfg)
        self.assertEqual(json.loads(self.lam.invoke(FunctionName=ok, Payload=b"{}")["Payload"].read()), "ok")
        self.lam.list_function_event_invoke_configs(FunctionName=bad)

        # A crash that repeats on every restart would show now: start it once more.
        self.restart_and_check([recorder, bad, ok, failed])


class ServeCommandLineTest(unittest.TestCase):
    """Numbers on kiln serve's command line are refused unless they fit, never wrapped."""

    def test_negative_or_overflowing_numbers_are_bad_options(self):
        import subprocess
        import tempfile
        with tempfile.TemporaryDirectory(prefix="kiln-cli-") as tmp:
            for flag, value in [("--threads", "-1"), ("--sandbox-idle-seconds", "-5"),
                                ("--sandbox-idle-seconds", "99999999999999999999"), ("--threads", "+2")]:
                r = subprocess.run([harness.kiln_binary(), "serve", "--data-dir", os.path.join(tmp, "d"),
                                    "--listen", "127.0.0.1:0", flag, value],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 2, (flag, value, r.stderr))
                self.assertIn("bad option %s %s" % (flag, value), r.stderr)


if __name__ == "__main__":
    harness.main()
