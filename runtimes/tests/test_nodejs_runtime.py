"""Tests of the nodejs20.x runtime (runtimes/nodejs20.x) against a fake Runtime API.
Run: /usr/bin/python3 -B runtimes/tests/test_nodejs_runtime.py"""

import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "fixtures"))
from runtime_harness import REPO, RuntimeProcess  # noqa: E402

BOOTSTRAP = os.path.join(REPO, "runtimes", "nodejs20.x", "bootstrap")
TASK_ROOT = os.path.join(REPO, "tests", "fixtures", "functions", "node")
LOG_LINE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t%s\t%s\t%s\n"


def runtime(handler, **kwargs):
    return RuntimeProcess([BOOTSTRAP], handler, TASK_ROOT, **kwargs)


class InvokeTest(unittest.TestCase):
    def call(self, handler, event=None):
        with runtime(handler) as rt:
            return rt.api.call({} if event is None else event)

    def assert_error(self, result, error_type, message):
        self.assertEqual(result.kind, "error", result)
        self.assertEqual(result.headers["lambda-runtime-function-error-type"], error_type)
        error = result.json()
        self.assertEqual(error["errorType"], error_type)
        self.assertEqual(error["errorMessage"], message)
        return error

    def test_async_handler_result(self):
        result = self.call("index.echo", {"a": [1, {"b": None}]})
        self.assertEqual(result.kind, "response")
        self.assertEqual(result.json(), {"a": [1, {"b": None}]})

    def test_callback_waits_for_empty_event_loop(self):
        with runtime("index.callbackWaits") as rt:
            request_id = rt.api.invoke({})
            self.assertEqual(rt.api.result(request_id).json(), {"via": "callback"})
            # The timer started after callback() ran before the response was posted.
            self.assertRegex(rt.output(), LOG_LINE % (request_id, "INFO", "late timer fired"))

    def test_callback_without_waiting_for_event_loop(self):
        with runtime("index.callbackNoWait") as rt:
            # A 10-minute timer is pending: the response must not wait for it.
            self.assertEqual(rt.api.call({}).json(), "no wait")

    def test_context_succeed_fail_done(self):
        self.assertEqual(self.call("index.succeed").json(), {"via": "succeed"})
        self.assertEqual(self.call("index.done").json(), {"via": "done"})
        self.assert_error(self.call("index.fail"), "Error", "failed via context")

    def test_errors_from_callback_throw_and_rejection(self):
        error = self.assert_error(self.call("index.callbackError"), "TypeError", "bad callback")
        self.assertEqual(error["trace"][0], "TypeError: bad callback")
        self.assertIn("index.js", error["trace"][1])
        self.assert_error(self.call("index.throwSync"), "RangeError", "sync boom")
        self.assert_error(self.call("index.throwAsync"), "Error", "async boom")
        error = self.assert_error(self.call("index.callbackString"), "string", "some error")
        self.assertEqual(error["trace"], [])

    def test_sandbox_survives_a_handler_error(self):
        with runtime("index.throwSync") as rt:
            for _ in range(3):
                self.assertEqual(rt.api.call({}).json()["errorMessage"], "sync boom")
            self.assertIn("\tERROR\tInvoke Error \t{", rt.output())

    def test_uncaught_exception_fails_the_invoke_and_exits(self):
        with runtime("index.uncaught") as rt:
            self.assert_error(rt.api.call({}), "Error", "uncaught boom")
            self.assertEqual(rt.wait_exit(), 129)
        with runtime("index.unhandledRejection") as rt:
            self.assert_error(rt.api.call({}), "Runtime.UnhandledPromiseRejection",
                              "Error: rejected boom")
            self.assertEqual(rt.wait_exit(), 128)

    def test_invalid_json_event_fails_with_syntax_error(self):
        with runtime("index.echo") as rt:
            result = rt.api.call(b"{not json")
            self.assertEqual(result.kind, "error")
            self.assertEqual(result.json()["errorType"], "SyntaxError")
            self.assertEqual(rt.api.call({"after": 1}).json(), {"after": 1})

    def test_handler_returning_nothing_answers_null(self):
        self.assertEqual(self.call("index.returnsNothing").body, b"null")

    def test_unserializable_result(self):
        self.assert_error(self.call("index.circular"), "Error", "Unable to stringify response body")

    def test_large_payload_round_trips(self):
        big = {"data": "x" * (5 * 1024 * 1024)}
        with runtime("index.echo") as rt:
            result = rt.api.call(big, timeout=30)
            self.assertEqual(result.json(), big)

    def test_refused_oversized_response_fails_that_invoke_only(self):
        with runtime("index.big", max_response_bytes=1024 * 1024) as rt:
            self.assertEqual(rt.api.call({"size": 7 * 1024 * 1024}, timeout=30).kind, "too_large")
            self.assertEqual(rt.api.call({"size": 3}).json(), "xxx")
            self.assertIsNone(rt.proc.poll())

    def test_many_invokes_share_one_keep_alive_connection(self):
        with runtime("index.echo") as rt:
            for i in range(300):
                self.assertEqual(rt.api.call({"i": i}).json(), {"i": i})
            self.assertEqual(rt.api.connections, 1)

    def test_chunked_next_and_server_closing_the_connection(self):
        with runtime("index.echo", chunked=True) as rt:
            self.assertEqual(rt.api.call({"pad": "p" * 1000}).json(), {"pad": "p" * 1000})
        with runtime("index.echo", close_after_next=True) as rt:
            for i in range(3):
                self.assertEqual(rt.api.call({"i": i}).json(), {"i": i})

    def test_console_lines_in_lambda_format(self):
        with runtime("index.logs") as rt:
            request_id = rt.api.invoke({})
            self.assertEqual(rt.api.result(request_id).json(), "logged")
            out = rt.output()
            self.assertRegex(out, LOG_LINE % (request_id, "INFO", re.escape("hello { n: 1 }")))
            self.assertRegex(out, LOG_LINE % (request_id, "ERROR", "bad\rthing"))
            self.assertRegex(out, LOG_LINE % (request_id, "WARN", "careful"))
            self.assertRegex(out, LOG_LINE % (request_id, "INFO", "info"))

    def test_module_kinds_and_paths(self):
        self.assertEqual(self.call("esm.handler", {"k": 1}).json(), {"esm": True, "event": {"k": 1}})
        self.assertEqual(self.call("common.handler").json(), {"cjs": True})
        self.assertEqual(self.call("esm-js/app.handler").json(), {"esmJs": True})
        self.assertEqual(self.call("nested/dir/file.handler").json(), {"nested": True})
        self.assertEqual(self.call("index.handlers.deep.handler").json(), "deep")


# Handlers of the JSON log format tests, written to a temporary task root.
JSON_LOGS_JS = r"""
console.warn('at init');
exports.logs = async () => {
  console.log('hello', {n: 1});
  console.info({a: 1, nested: {b: [1, 2]}});
  console.warn('multi\nline');
  console.error(new TypeError('bad thing'));
  console.error('failed:', new RangeError('out of range'));
  console.debug('dbg');
  console.trace('trc');
  console.fatal('fatal one');
  const err = new Error('wrapped'); err.code = 'E_WRAPPED';
  console.log({cause: err});
  const circular = {k: 1}; circular.self = circular;
  console.log(circular);
  console.log(10n);
  console.log();
  return 'logged';
};
exports.throws = async () => { throw new SyntaxError('handler boom'); };
exports.failsWithString = (event, context, callback) => callback('plain failure');
exports.uncaught = () => { setTimeout(() => { throw new Error('uncaught boom'); }, 1); };
"""
JSON_ENV = {"AWS_LAMBDA_LOG_FORMAT": "JSON"}
ISO_MS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class JsonLogFormatTest(unittest.TestCase):
    """AWS_LAMBDA_LOG_FORMAT=JSON: one JSON object per console call, filtered by
    AWS_LAMBDA_LOG_LEVEL, as Lambda's Node.js runtime writes them."""

    @classmethod
    def setUpClass(cls):
        cls.task_root = tempfile.mkdtemp(prefix="kiln-node-json-")
        with open(os.path.join(cls.task_root, "app.js"), "w") as f:
            f.write(JSON_LOGS_JS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.task_root)

    def run_handler(self, handler, env):
        """Invokes once; returns (request id, result, the JSON records written)."""
        with RuntimeProcess([BOOTSTRAP], handler, self.task_root, env=env) as rt:
            request_id = rt.api.invoke({})
            result = rt.api.result(request_id)
            lines = rt.output().splitlines()
        for line in lines:
            self.assertTrue(line.startswith("{"), "not a JSON record: %r" % line)
        return request_id, result, [json.loads(line) for line in lines]

    def test_every_console_call_is_one_json_record(self):
        request_id, result, records = self.run_handler("app.logs", JSON_ENV)
        self.assertEqual(result.json(), "logged")
        init, *invoke = records
        self.assertEqual(init, {"timestamp": init["timestamp"], "level": "WARN", "message": "at init"})
        self.assertRegex(init["timestamp"], "^%s$" % ISO_MS)
        for record in invoke:
            self.assertEqual(record["requestId"], request_id)
            self.assertRegex(record["timestamp"], "^%s$" % ISO_MS)
        self.assertEqual([(r["level"], r.get("message")) for r in invoke[:3]], [
            ("INFO", "hello { n: 1 }"),              # several arguments: util.format
            ("INFO", {"a": 1, "nested": {"b": [1, 2]}}),  # one object: the object itself
            ("WARN", "multi\nline"),                 # one JSON line, newline escaped
        ])
        error = invoke[3]["message"]
        self.assertEqual(invoke[3]["level"], "ERROR")
        self.assertEqual((error["errorType"], error["errorMessage"]), ("TypeError", "bad thing"))
        self.assertEqual(error["stackTrace"][0], "TypeError: bad thing")
        self.assertIn("app.js", error["stackTrace"][1])
        mixed = invoke[4]
        self.assertTrue(mixed["message"].startswith("failed: RangeError: out of range\n"), mixed)
        self.assertEqual((mixed["errorType"], mixed["errorMessage"]), ("RangeError", "out of range"))
        self.assertEqual(mixed["stackTrace"][0], "RangeError: out of range")
        self.assertEqual([(r["level"], r["message"]) for r in invoke[5:8]],
                         [("DEBUG", "dbg"), ("TRACE", "trc"), ("FATAL", "fatal one")])
        nested = invoke[8]["message"]["cause"]
        self.assertEqual((nested["errorType"], nested["errorMessage"], nested["code"]),
                         ("Error", "wrapped", "E_WRAPPED"))
        # What JSON cannot encode is logged as util.format renders it.
        self.assertEqual(invoke[9]["message"], "<ref *1> { k: 1, self: [Circular *1] }")
        self.assertEqual(invoke[10]["message"], "10n")
        self.assertNotIn("message", invoke[11])  # console.log(): message undefined
        self.assertEqual(len(invoke), 12)

    def test_level_drops_records_below_it_and_fatal_always_writes(self):
        env = dict(JSON_ENV, AWS_LAMBDA_LOG_LEVEL="WARN")
        _, _, records = self.run_handler("app.logs", env)
        self.assertEqual([r["level"] for r in records], ["WARN", "WARN", "ERROR", "ERROR", "FATAL"])
        _, _, records = self.run_handler("app.logs", dict(JSON_ENV, AWS_LAMBDA_LOG_LEVEL="FATAL"))
        self.assertEqual([(r["level"], r["message"]) for r in records], [("FATAL", "fatal one")])

    def test_names_are_case_insensitive_and_unknown_level_logs_everything(self):
        env = {"AWS_LAMBDA_LOG_FORMAT": "json", "AWS_LAMBDA_LOG_LEVEL": "error"}
        _, _, records = self.run_handler("app.logs", env)
        self.assertEqual([r["level"] for r in records], ["ERROR", "ERROR", "FATAL"])
        _, _, records = self.run_handler("app.logs", dict(JSON_ENV, AWS_LAMBDA_LOG_LEVEL="LOUD"))
        self.assertEqual(len(records), 13)
        self.assertIn("TRACE", [r["level"] for r in records])

    def test_invoke_error_is_logged_as_the_error_object(self):
        request_id, result, records = self.run_handler("app.throws", JSON_ENV)
        self.assertEqual(result.json()["errorType"], "SyntaxError")  # the wire shape is unchanged
        self.assertEqual(result.json()["trace"][0], "SyntaxError: handler boom")
        error = records[-1]
        self.assertEqual((error["level"], error["requestId"]), ("ERROR", request_id))
        self.assertEqual(error["message"]["errorType"], "SyntaxError")
        self.assertEqual(error["message"]["errorMessage"], "handler boom")
        self.assertEqual(error["message"]["stackTrace"][0], "SyntaxError: handler boom")
        # A non-Error failure is logged as an Error of that text.
        _, result, records = self.run_handler("app.failsWithString", JSON_ENV)
        self.assertEqual(result.json(), {"errorType": "string", "errorMessage": "plain failure",
                                         "trace": []})
        self.assertEqual(records[-1]["message"]["errorType"], "Error")
        self.assertEqual(records[-1]["message"]["errorMessage"], "plain failure")
        # At FATAL even the runtime's error report is dropped; the invoke still fails.
        _, result, records = self.run_handler("app.throws", dict(JSON_ENV, AWS_LAMBDA_LOG_LEVEL="FATAL"))
        self.assertEqual(result.kind, "error")
        self.assertEqual(records, [])

    def test_uncaught_and_init_errors_are_json_records(self):
        with RuntimeProcess([BOOTSTRAP], "app.uncaught", self.task_root, env=JSON_ENV) as rt:
            self.assertEqual(rt.api.call({}).json()["errorMessage"], "uncaught boom")
            self.assertEqual(rt.wait_exit(), 129)
            record = json.loads(rt.output().splitlines()[-1])
            self.assertEqual(record["message"]["errorMessage"], "uncaught boom")
        with RuntimeProcess([BOOTSTRAP], "app.missing", self.task_root, env=JSON_ENV) as rt:
            self.assertEqual(rt.api.init_error().json()["errorType"], "Runtime.HandlerNotFound")
            self.assertEqual(rt.wait_exit(), 129)
            record = json.loads(rt.output().splitlines()[-1])
            self.assertEqual(record["level"], "ERROR")
            self.assertNotIn("requestId", record)  # before the first invoke
            self.assertEqual(record["message"]["errorType"], "HandlerNotFound")
            self.assertEqual(record["message"]["errorMessage"], "app.missing is undefined or not exported")

    def test_text_format_without_json_is_unchanged(self):
        with RuntimeProcess([BOOTSTRAP], "app.logs", self.task_root, env={}) as rt:
            request_id = rt.api.invoke({})
            rt.api.result(request_id)
            out = rt.output()
        self.assertRegex(out, r"^%s\tundefined\tWARN\tat init\n" % ISO_MS)
        self.assertRegex(out, LOG_LINE % (request_id, "WARN", "multi\rline"))
        self.assertRegex(out, LOG_LINE % (request_id, "TRACE", "trc"))
        self.assertRegex(out, LOG_LINE % (request_id, "INFO", re.escape("{ a: 1, nested: { b: [ 1, 2 ] } }")))
        self.assertNotIn('{"timestamp"', out)


class ContextTest(unittest.TestCase):
    def test_context_fields(self):
        deadline = int(time.time() * 1000) + 5000
        client_context = {"client": {"installation_id": "inst"}, "custom": {"k": "v"}}
        cognito = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        with runtime("index.contextFields") as rt:
            request_id = rt.api.invoke({}, deadline_ms=deadline, headers={
                "Lambda-Runtime-Client-Context": json.dumps(client_context),
                "Lambda-Runtime-Cognito-Identity": json.dumps(cognito),
                "Lambda-Runtime-Trace-Id": "Root=1-abc",
            })
            fields = rt.api.result(request_id).json()
            self.assertEqual(fields["awsRequestId"], request_id)
            self.assertEqual(fields["functionName"], "fixture")
            self.assertEqual(fields["functionVersion"], "$LATEST")
            self.assertEqual(fields["invokedFunctionArn"],
                             "arn:aws:lambda:us-east-1:123456789012:function:fixture")
            self.assertEqual(fields["memoryLimitInMB"], "128")  # a string, as Lambda's
            self.assertEqual(fields["logGroupName"], "/aws/lambda/fixture")
            self.assertEqual(fields["logStreamName"], "2024/01/01/[$LATEST]0123456789abcdef")
            self.assertGreater(fields["remainingMs"], 0)
            self.assertLessEqual(fields["remainingMs"], 5000)
            self.assertIs(fields["callbackWaitsForEmptyEventLoop"], True)
            self.assertEqual(fields["clientContext"], client_context)
            self.assertEqual(fields["identity"], cognito)
            self.assertEqual(fields["traceId"], "Root=1-abc")
            self.assertEqual(fields["cwd"], TASK_ROOT)

            fields = rt.api.call({}, deadline_ms=int(time.time() * 1000) - 1000).json()
            self.assertLess(fields["remainingMs"], 0)  # Node's runtime does not clamp
            self.assertNotIn("clientContext", fields)  # undefined
            self.assertEqual(fields["initCount"], 1)


class InitErrorTest(unittest.TestCase):
    def test_bad_or_unreachable_runtime_api_exits_1(self):
        for address in ("nope", "127.0.0.1:notaport", "127.0.0.1:1"):
            with runtime("index.echo", env={"AWS_LAMBDA_RUNTIME_API": address}) as rt:
                self.assertEqual(rt.wait_exit(), 1, address)
                self.assertIn("kiln runtime: ", rt.output())

    def assert_init_error(self, handler, error_type, message_prefix):
        with runtime(handler) as rt:
            posted = rt.api.init_error()
            self.assertEqual(rt.wait_exit(), 129)
            error = posted.json()
            self.assertEqual(posted.headers["lambda-runtime-function-error-type"], error_type)
            self.assertEqual(error["errorType"], error_type)
            self.assertTrue(error["errorMessage"].startswith(message_prefix), error["errorMessage"])
            self.assertIsInstance(error["trace"], list)
            self.assertEqual(rt.api.next_calls, 0)
            self.assertIn("undefined\tERROR\tUncaught Exception \t{", rt.output())
            return error

    def test_missing_module(self):
        self.assert_init_error("nosuchfile.handler", "Runtime.ImportModuleError",
                               "Error: Cannot find module 'nosuchfile'")

    def test_missing_dependency(self):
        self.assert_init_error("missing-dep.handler", "Runtime.ImportModuleError",
                               "Error: Cannot find module 'kiln-no-such-module-xyz'")

    def test_missing_esm_package_is_a_plain_error_as_in_lambda(self):
        self.assert_init_error("esm-missing.handler", "Error",
                               "Cannot find package 'kiln-no-such-package-xyz'")

    def test_syntax_error(self):
        self.assert_init_error("syntax.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: ")

    def test_exception_at_load_time(self):
        self.assert_init_error("init-throws.handler", "Error", "init failed on purpose")

    def test_missing_and_non_function_handler(self):
        self.assert_init_error("index.nope", "Runtime.HandlerNotFound",
                               "index.nope is undefined or not exported")
        self.assert_init_error("index.notAFunction", "Runtime.HandlerNotFound",
                               "index.notAFunction is not a function")

    def test_malformed_handler_names(self):
        self.assert_init_error("nodot", "Runtime.MalformedHandlerName", "Bad handler")
        self.assert_init_error("../escape.handler", "Runtime.MalformedHandlerName",
                               "'..' is not allowed in handler name.")


SNAP = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}


class SnapStartTest(unittest.TestCase):
    def test_hooks_run_once_in_order_around_restore_next_and_randomness_is_renewed(self):
        with runtime("snapstart.handler", env=SNAP) as rt:
            rt.api.wait_for_restore_next()
            time.sleep(0.2)
            self.assertEqual(rt.api.next_calls, 0, "no invoke before the restore")
            rt.api.restore()
            first = rt.api.call({}).json()
            self.assertEqual(first["events"], ["before2:x:3", "before1", "after1", "after2"])
            self.assertTrue(first["decoratorReturnsFunction"])
            self.assertTrue(first["mathRandomReplaced"])
            self.assertTrue(0 <= first["random"] < 1)
            self.assertGreaterEqual(first["uuidCallsByRuntime"], 128, "the cached UUID batch is drawn past")
            self.assertTrue(first["randomUUIDReplaced"])
            self.assertRegex(first["uuid"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            self.assertEqual(rt.api.call({}).json()["events"], first["events"], "once each")
            self.assertEqual(rt.api.calls[:2], ["GET /restore/next", "GET /invocation/next"])
            self.assertEqual(rt.api.restore_next_calls, 1)

    def test_without_snap_start_nothing_changes(self):
        for env in ({}, {"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}):
            with runtime("snapstart.handler", env=env) as rt:
                result = rt.api.call({}).json()
                self.assertEqual(result["events"], [])
                self.assertFalse(result["mathRandomReplaced"])
                self.assertEqual(result["uuidCallsByRuntime"], 0)
                self.assertFalse(result["randomUUIDReplaced"])
                self.assertEqual(rt.api.restore_next_calls, 0)

    def test_before_snapshot_hook_error_is_an_init_error_and_exits(self):
        with runtime("snapstart-hook-fails.handler", env=dict(SNAP, HOOK_FAILS="before")) as rt:
            posted = rt.api.init_error()
            self.assertEqual(rt.wait_exit(), 64)
            self.assertEqual(posted.headers["lambda-runtime-function-error-type"], "Runtime.BeforeSnapshotError")
            self.assertEqual(posted.json()["errorType"], "TypeError")
            self.assertEqual(posted.json()["errorMessage"], "hook refuses: before")
            self.assertEqual(rt.api.restore_next_calls, 0)

    def test_after_restore_hook_error_is_a_restore_error_and_exits(self):
        with runtime("snapstart-hook-fails.handler", env=dict(SNAP, HOOK_FAILS="after")) as rt:
            rt.api.restore()
            posted = rt.api.restore_error()
            self.assertEqual(rt.wait_exit(), 65)
            self.assertEqual(posted.headers["lambda-runtime-function-error-type"], "Runtime.AfterRestoreError")
            self.assertEqual(posted.json()["errorMessage"], "hook refuses: after")
            self.assertEqual(rt.api.next_calls, 0)

    def test_kernel_seeded_math_random_is_xorshift128plus(self):
        script = (
            "const s = require(%r);"
            "const f = s.xorshift128plus(new Uint32Array([0x12345678, 0x9abcdef0, 0x0fedcba9, 0x87654321]));"
            "const M = (1n << 64n) - 1n;"
            "let a = 0x123456789abcdef0n, b = 0x0fedcba987654321n, ok = true;"
            "for (let i = 0; i < 2000; i++) {"
            "  let x = a; const y = b; a = y; x ^= (x << 23n) & M; x ^= x >> 17n; x ^= y ^ (y >> 26n); b = x;"
            "  if (Number(((a + b) & M) >> 11n) / 2 ** 53 !== f()) ok = false; }"
            "const g = s.xorshift128plus(s.kernelSeed()), h = s.xorshift128plus(s.kernelSeed());"
            "console.log(JSON.stringify({ok, differ: g() !== h()}));"
        ) % os.path.join(REPO, "runtimes", "nodejs20.x", "ric", "snap-start.js")
        import subprocess
        out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(json.loads(out.stdout), {"ok": True, "differ": True}, out.stderr)


if __name__ == "__main__":
    unittest.main()
