"""Tests of the nodejs20.x runtime (runtimes/nodejs20.x) against a fake Runtime API.
Run: /usr/bin/python3 -B runtimes/tests/test_nodejs_runtime.py"""

import json
import os
import re
import sys
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


if __name__ == "__main__":
    unittest.main()
