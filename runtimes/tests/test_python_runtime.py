"""Tests of the python3.11 runtime (runtimes/python3.11) against a fake Runtime API.
Run: /usr/bin/python3 -B runtimes/tests/test_python_runtime.py"""

import json
import os
import random
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "fixtures"))
from runtime_harness import REPO, RuntimeProcess  # noqa: E402

BOOTSTRAP = os.path.join(REPO, "runtimes", "python3.11", "bootstrap")
TASK_ROOT = os.path.join(REPO, "tests", "fixtures", "functions", "python")


def runtime(handler, **kwargs):
    return RuntimeProcess([BOOTSTRAP], handler, TASK_ROOT, **kwargs)


class InvokeTest(unittest.TestCase):
    def test_echo_returns_event_as_json(self):
        with runtime("app.echo") as rt:
            result = rt.api.call({"a": [1, 2, {"b": None}], "s": "x"})
            self.assertEqual(result.kind, "response")
            self.assertEqual(result.json(), {"a": [1, 2, {"b": None}], "s": "x"})
            self.assertEqual(result.headers["content-type"], "application/json")

    def test_handler_exception_posts_error_with_frames_and_sandbox_survives(self):
        with runtime("app.fail") as rt:
            request_id = rt.api.invoke({"why": "x"})
            result = rt.api.result(request_id)
            self.assertEqual(result.kind, "error")
            self.assertEqual(result.headers["lambda-runtime-function-error-type"], "ValueError")
            error = result.json()
            self.assertEqual(error["errorType"], "ValueError")
            self.assertEqual(error["errorMessage"], "boom: x")
            self.assertEqual(error["requestId"], request_id)
            self.assertEqual(len(error["stackTrace"]), 1)
            frame = error["stackTrace"][0]
            self.assertIn('app.py", line', frame)
            self.assertIn("in fail\n    raise ValueError(", frame)
            self.assertIn("[ERROR] ValueError: boom: x\rTraceback (most recent call last):\r",
                          rt.output())
            # The sandbox keeps serving.
            self.assertEqual(rt.api.call({"why": "y"}).json()["errorMessage"], "boom: y")

    def test_stack_trace_lists_every_user_frame_and_no_runtime_frame(self):
        with runtime("app.fail_nested") as rt:
            error = rt.api.call({}).json()
            self.assertEqual(error["errorType"], "KeyError")
            self.assertEqual(error["errorMessage"], "'missing'")
            self.assertEqual(len(error["stackTrace"]), 2)
            self.assertIn("in fail_nested", error["stackTrace"][0])
            self.assertIn("in inner", error["stackTrace"][1])
            self.assertNotIn("kiln_lambda_runtime", "".join(error["stackTrace"]))

    def test_missing_handler_fails_every_invoke_with_handler_not_found(self):
        with runtime("app.nope") as rt:
            for _ in range(2):
                result = rt.api.call({})
                self.assertEqual(result.kind, "error")
                self.assertEqual(result.json()["errorType"], "Runtime.HandlerNotFound")
                self.assertEqual(result.json()["errorMessage"], "Handler 'nope' missing on module 'app'")
                self.assertEqual(result.json()["stackTrace"], [])

    def test_non_callable_handler_fails_with_type_error(self):
        with runtime("app.not_callable") as rt:
            error = rt.api.call({}).json()
            self.assertEqual(error["errorType"], "TypeError")
            self.assertEqual(error["errorMessage"], "'int' object is not callable")

    def test_unserializable_result_is_marshal_error(self):
        with runtime("app.not_serializable") as rt:
            result = rt.api.call({})
            self.assertEqual(result.kind, "error")
            self.assertEqual(result.json()["errorType"], "Runtime.MarshalError")
            self.assertEqual(result.json()["errorMessage"],
                             "Unable to marshal response: Object of type set is not JSON serializable")

    def test_decimal_bytes_and_unicode_results(self):
        with runtime("app.decimals") as rt:
            self.assertEqual(rt.api.call({}).body, b'{"d": 1.5}')
        with runtime("app.raw_bytes") as rt:
            result = rt.api.call({})
            self.assertEqual(result.body, b"\x00raw\xff")
            self.assertEqual(result.headers["content-type"], "application/unknown")
        with runtime("app.unicode") as rt:
            self.assertEqual(rt.api.call({}).body, '{"text": "h\u00e9llo \u2603"}'.encode())

    def test_invalid_json_event_is_unmarshal_error(self):
        with runtime("app.echo") as rt:
            error = rt.api.call(b"{not json").json()
            self.assertEqual(error["errorType"], "Runtime.UnmarshalError")
            self.assertTrue(error["errorMessage"].startswith("Unable to unmarshal input: "))

    def test_large_payload_round_trips(self):
        big = {"data": "x" * (5 * 1024 * 1024)}
        with runtime("app.echo") as rt:
            result = rt.api.call(big, timeout=30)
            self.assertEqual(result.kind, "response")
            self.assertEqual(len(result.body), len(json.dumps(big)))
            self.assertEqual(result.json(), big)

    def test_refused_oversized_response_fails_that_invoke_only(self):
        with runtime("app.big", max_response_bytes=1024 * 1024) as rt:
            self.assertEqual(rt.api.call({"size": 7 * 1024 * 1024}, timeout=30).kind, "too_large")
            self.assertEqual(rt.api.call({"size": 3}).json(), "xxx")
            self.assertIsNone(rt.proc.poll())

    def test_many_invokes_share_one_keep_alive_connection(self):
        with runtime("app.echo") as rt:
            for i in range(300):
                self.assertEqual(rt.api.call({"i": i}).json(), {"i": i})
            self.assertEqual(rt.api.connections, 1)

    def test_chunked_next_and_server_closing_the_connection(self):
        with runtime("app.echo", chunked=True) as rt:
            for i in range(3):
                self.assertEqual(rt.api.call({"i": i, "pad": "p" * 1000}).json()["i"], i)
        with runtime("app.echo", close_after_next=True) as rt:
            for i in range(3):
                self.assertEqual(rt.api.call({"i": i}).json(), {"i": i})
            self.assertGreaterEqual(rt.api.connections, 3)

    def test_print_reaches_stdout_before_the_response(self):
        with runtime("app.prints") as rt:
            request_id = rt.api.invoke({})
            self.assertEqual(rt.api.result(request_id).json(), "ok")
            self.assertIn("hello from " + request_id + "\n", rt.output())
            self.assertIn("to stderr\n", rt.output())

    def test_logging_uses_lambda_format_with_request_id(self):
        with runtime("logs.handler") as rt:
            request_id = rt.api.invoke({"n": 3})
            self.assertEqual(rt.api.result(request_id).json(), 1)  # one root handler
            out = rt.output()
            self.assertRegex(out, r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t"
                             + request_id + r"\tinfo line 3\n")
            self.assertNotIn("debug line", out)
            self.assertNotIn("SHOULD NOT APPEAR", out)

    def test_module_paths_with_slashes_and_dots(self):
        with runtime("nested/deep/mod.handler") as rt:
            self.assertEqual(rt.api.call({}).json(), {"module": "nested.deep.mod"})
        with runtime("pkg.mod.handler") as rt:
            self.assertEqual(rt.api.call({}).json(), {"module": "pkg.mod"})

    def test_exit_builtin_ends_the_process_with_its_code(self):
        with runtime("app.exits") as rt:
            rt.api.invoke({})
            self.assertEqual(rt.wait_exit(), 3)


class ContextTest(unittest.TestCase):
    def test_context_fields(self):
        deadline = int(time.time() * 1000) + 5000
        client_context = {"client": {"installation_id": "inst", "app_title": "title"},
                          "custom": {"k": "v"}, "env": {"platform": "x"}}
        cognito = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
        with runtime("app.context_fields") as rt:
            request_id = rt.api.invoke({}, deadline_ms=deadline, headers={
                "Lambda-Runtime-Client-Context": json.dumps(client_context),
                "Lambda-Runtime-Cognito-Identity": json.dumps(cognito),
                "Lambda-Runtime-Trace-Id": "Root=1-abc",
            })
            fields = rt.api.result(request_id).json()
            self.assertEqual(fields["aws_request_id"], request_id)
            self.assertEqual(fields["function_name"], "fixture")
            self.assertEqual(fields["function_version"], "$LATEST")
            self.assertEqual(fields["invoked_function_arn"],
                             "arn:aws:lambda:us-east-1:123456789012:function:fixture")
            self.assertEqual(fields["memory_limit_in_mb"], "128")  # a string, as Lambda's
            self.assertEqual(fields["log_group_name"], "/aws/lambda/fixture")
            self.assertEqual(fields["log_stream_name"], "2024/01/01/[$LATEST]0123456789abcdef")
            self.assertGreater(fields["remaining_ms"], 0)
            self.assertLessEqual(fields["remaining_ms"], 5000)
            self.assertEqual(fields["identity"], ["id-1", "pool-1"])
            self.assertEqual(fields["client_context"], {
                "custom": {"k": "v"}, "env": {"platform": "x"},
                "installation_id": "inst", "app_title": "title"})
            self.assertEqual(fields["trace_id"], "Root=1-abc")
            self.assertEqual(fields["cwd"], TASK_ROOT)
            self.assertEqual(fields["sys_path_head"][0], TASK_ROOT)
            self.assertEqual(fields["sys_path_head"][1:3],
                             ["/opt/python/lib/python3.11/site-packages", "/opt/python"])

            # Without the optional headers; a deadline in the past; init ran once.
            fields = rt.api.call({}, deadline_ms=int(time.time() * 1000) - 1000).json()
            self.assertEqual(fields["remaining_ms"], 0)
            self.assertEqual(fields["identity"], [None, None])
            self.assertIsNone(fields["client_context"])
            self.assertEqual(fields["init_count"], 1)


class InitErrorTest(unittest.TestCase):
    def test_bad_or_unreachable_runtime_api_exits_1(self):
        for address in ("nope", "127.0.0.1:notaport", "127.0.0.1:1"):
            with runtime("app.echo", env={"AWS_LAMBDA_RUNTIME_API": address}) as rt:
                self.assertEqual(rt.wait_exit(), 1, address)
                self.assertIn("kiln runtime: ", rt.output())

    def assert_init_error(self, handler, error_type, message, exit_code=1):
        with runtime(handler) as rt:
            posted = rt.api.init_error()
            self.assertEqual(rt.wait_exit(), exit_code)
            error = posted.json()
            self.assertEqual(posted.headers["lambda-runtime-function-error-type"], error_type)
            self.assertEqual(error["errorType"], error_type)
            self.assertEqual(error["errorMessage"], message)
            self.assertEqual(error["requestId"], "")
            self.assertEqual(rt.api.next_calls, 0)
            return error

    def test_import_error_of_a_dependency(self):
        self.assert_init_error("import_missing.handler", "Runtime.ImportModuleError",
                               "Unable to import module 'import_missing': "
                               "No module named 'kiln_no_such_module_xyz'")

    def test_missing_module(self):
        self.assert_init_error("nosuchfile.handler", "Runtime.ImportModuleError",
                               "Unable to import module 'nosuchfile': No module named 'nosuchfile'")

    def test_syntax_error(self):
        with runtime("syntax_error.handler") as rt:
            error = rt.api.init_error().json()
            self.assertEqual(error["errorType"], "Runtime.UserCodeSyntaxError")
            self.assertTrue(error["errorMessage"].startswith(
                "Syntax error in module 'syntax_error': "), error["errorMessage"])
            self.assertEqual(len(error["stackTrace"]), 1)
            self.assertIn('syntax_error.py" Line 1', error["stackTrace"][0])
            self.assertEqual(rt.wait_exit(), 1)

    def test_exception_at_import_time(self):
        error = self.assert_init_error("init_raises.handler", "RuntimeError", "init failed on purpose")
        self.assertIn("in helper", error["stackTrace"][-1])

    def test_malformed_handler_name(self):
        self.assert_init_error("nodot", "Runtime.MalformedHandlerName",
                               "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)")

    def test_builtin_module_name(self):
        self.assert_init_error("sys.handler", "Runtime.BuiltInModuleConflict",
                               "Cannot use built-in module sys as a handler module")


SNAP = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}


class SnapStartTest(unittest.TestCase):
    def test_hooks_run_once_in_lambdas_order_around_restore_next(self):
        with runtime("snapstart.handler", env=SNAP) as rt:
            rt.api.wait_for_restore_next()
            time.sleep(0.2)
            self.assertEqual(rt.api.next_calls, 0, "no invoke before the restore")
            rt.api.restore()
            first = rt.api.call({}).json()
            self.assertEqual(first["events"], ["before2:x:3", "before1", "after1", "after2"])
            self.assertTrue(first["decorator_returns_function"])
            self.assertEqual(rt.api.call({}).json()["events"], first["events"], "once each")
            self.assertEqual(rt.api.calls[:2], ["GET /restore/next", "GET /invocation/next"])
            self.assertEqual(rt.api.restore_next_calls, 1)

    def test_without_snap_start_no_hook_runs_and_restore_next_is_never_called(self):
        for env in ({}, {"AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand"}):
            with runtime("snapstart.handler", env=env) as rt:
                result = rt.api.call({}).json()
                self.assertEqual(result["events"], [])
                self.assertEqual(rt.api.restore_next_calls, 0)
                self.assertEqual(result["random"], random.Random(42).random(), "init's seed stands")

    def test_random_is_reseeded_after_restore(self):
        seeded = random.Random(42).random()
        values = set()
        for _ in range(2):
            with runtime("snapstart.handler", env=SNAP) as rt:
                rt.api.restore()
                values.add(rt.api.call({}).json()["random"])
        self.assertNotIn(seeded, values)
        self.assertEqual(len(values), 2)

    def test_before_snapshot_hook_error_is_an_init_error_and_exits(self):
        with runtime("snapstart_hook_fails.handler", env=dict(SNAP, HOOK_FAILS="before")) as rt:
            posted = rt.api.init_error()
            self.assertEqual(rt.wait_exit(), 64)
            self.assertEqual(posted.headers["lambda-runtime-function-error-type"], "Runtime.BeforeSnapshotError")
            error = posted.json()
            self.assertEqual(error["errorType"], "ValueError")
            self.assertEqual(error["errorMessage"], "hook refuses: before")
            self.assertIn("in explode", error["stackTrace"][-1])
            self.assertNotIn("kiln_lambda_runtime", "".join(error["stackTrace"]))
            self.assertEqual(rt.api.restore_next_calls, 0)
            self.assertIn("[ERROR] ValueError: hook refuses: before", rt.output())

    def test_after_restore_hook_error_is_a_restore_error_and_exits(self):
        with runtime("snapstart_hook_fails.handler", env=dict(SNAP, HOOK_FAILS="after")) as rt:
            rt.api.restore()
            posted = rt.api.restore_error()
            self.assertEqual(rt.wait_exit(), 65)
            self.assertEqual(posted.headers["lambda-runtime-function-error-type"], "Runtime.AfterRestoreError")
            self.assertEqual(posted.json()["errorMessage"], "hook refuses: after")
            self.assertEqual(rt.api.next_calls, 0)

    def test_module_is_importable_and_returns_the_function(self):
        sys.path.insert(0, os.path.join(REPO, "runtimes", "python3.11"))
        try:
            import snapshot_restore_py as hooks
        finally:
            sys.path.pop(0)
        f = lambda: None  # noqa: E731
        self.assertIs(hooks.register_before_snapshot(f, 1, k=2), f)
        self.assertIs(hooks.register_after_restore(f), f)
        self.assertEqual(hooks.get_before_snapshot()[-1], (f, (1,), {"k": 2}))
        self.assertEqual(hooks.get_after_restore()[-1], (f, (), {}))


if __name__ == "__main__":
    unittest.main()
