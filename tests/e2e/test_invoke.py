"""Invoke, across python3.11, nodejs20.x and provided.al2023, driven by boto3."""
import base64
import json
import re
import threading
import time

import functions
import harness
from harness import MB

LIMIT = 6 * MB  # Lambda's synchronous payload limit, 6291456 bytes


class InvokeMixin:
    runtime = None
    error_type = None          # errorType of {"action": "raise"}
    error_message = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip = functions.zip_for(cls.runtime)
        cls.handler = functions.handler_for(cls.runtime)
        cls.fn, cls.created = cls.make(cls, Environment={"Variables": {"USER_VAR": "user-value"}})

    def make(self, zip_bytes=None, handler=None, **kw):
        name = harness.unique_name(self.runtime.replace(".", "").replace("_", ""))
        resp = harness.create_function(self.lam, name, zip_bytes or self.zip, self.runtime,
                                       handler or self.handler, **kw)
        return name, resp

    def invoke(self, event, name=None, tail=False, **kw):
        if tail:
            kw["LogType"] = "Tail"
        resp = self.lam.invoke(FunctionName=name or self.fn,
                               Payload=json.dumps(event).encode(), **kw)
        body = resp["Payload"].read()
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = body
        return resp, payload

    def log_of(self, resp):
        self.assertIn("LogResult", resp, "LogType Tail gave no LogResult: %r" % resp)
        return base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")

    def assertOk(self, resp, payload=None):
        self.assertEqual(resp["StatusCode"], 200, repr(resp))
        self.assertNotIn("FunctionError", resp, "unexpected FunctionError, payload %r" % (payload,))

    def assertFunctionError(self, resp, payload, error_type, message_re=None):
        self.assertEqual(resp["StatusCode"], 200, repr(resp))
        self.assertEqual(resp.get("FunctionError"), "Unhandled", "payload %r" % (payload,))
        self.assertIsInstance(payload, dict, repr(payload))
        self.assertEqual(payload.get("errorType"), error_type, repr(payload))
        if message_re:
            self.assertRegex(payload.get("errorMessage", ""), message_re)

    # ------------------------------------------------------------ success paths

    def test_payload_round_trip(self):
        data = {"k": [1, 2.5, "ü", None, True], "nested": {"a": "b" * 100}}
        resp, payload = self.invoke({"action": "echo", "data": data})
        self.assertOk(resp, payload)
        self.assertEqual(payload, data)
        self.assertEqual(resp.get("ExecutedVersion"), "$LATEST")

    def test_dry_run_answers_204_without_running(self):
        resp = self.lam.invoke(FunctionName=self.fn, InvocationType="DryRun", Payload=b"{}")
        self.assertEqual(resp["StatusCode"], 204)
        self.assertEqual(resp["Payload"].read(), b"")

    def test_warm_sandbox_is_reused(self):
        _, first = self.invoke({"action": "state"})
        _, second = self.invoke({"action": "state"})
        self.assertEqual(first["sandbox"], second["sandbox"], "warm sandbox not reused")
        self.assertEqual(second["count"], first["count"] + 1)

    def test_concurrent_invokes_get_two_sandboxes(self):
        name, _ = self.make()
        results, errors = [None, None], []
        barrier = threading.Barrier(2)

        def run(i):
            try:
                barrier.wait(5)
                results[i] = self.invoke({"action": "sleep", "seconds": 1.5}, name=name)
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        for resp, payload in results:
            self.assertOk(resp, payload)
        self.assertNotEqual(results[0][1]["sandbox"], results[1][1]["sandbox"],
                            "two concurrent invokes ran in one sandbox")

    def test_environment_variables(self):
        resp, env = self.invoke({"action": "env"})
        self.assertOk(resp, env)
        cfg = self.created
        expect = {
            "AWS_LAMBDA_FUNCTION_NAME": self.fn,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg["MemorySize"]),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + self.fn,
            "_HANDLER": self.handler,
            "AWS_REGION": harness.REGION,
            "AWS_DEFAULT_REGION": harness.REGION,
            "USER_VAR": "user-value",
        }
        if harness.is_jailed():  # the process backend rewrites these to host paths
            expect["LAMBDA_TASK_ROOT"] = "/var/task"
            expect["LAMBDA_RUNTIME_DIR"] = "/var/runtime"
        for k, v in expect.items():
            self.assertEqual(env.get(k), v, "env %s" % k)
        for k in ("AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_LOG_STREAM_NAME", "PATH",
                  "LD_LIBRARY_PATH"):
            self.assertTrue(env.get(k), "env %s missing or empty" % k)
        self.assertIn(env.get("TZ"), (":UTC", "UTC"))
        self.assertRegex(env["AWS_LAMBDA_RUNTIME_API"], r"^[0-9a-zA-Z.\-\[\]:]+:\d+$")
        if self.runtime != "provided.al2023":
            self.assertEqual(env["AWS_EXECUTION_ENV"], "AWS_Lambda_" + self.runtime)
        self.assertNotIn("KILN_SECRET_ACCESS_KEY", env, "server secret leaked to sandbox")
        self.assertNotIn("KILN_ACCESS_KEY_ID", env, "server key leaked to sandbox")

    # ------------------------------------------------------------ logs

    def test_log_tail_has_start_end_report_and_output(self):
        name, _ = self.make()
        marker = "marker-" + harness.unique_name()
        resp, payload = self.invoke({"action": "print", "text": marker}, name=name, tail=True)
        self.assertOk(resp, payload)
        log = self.log_of(resp)
        rid = resp["ResponseMetadata"]["RequestId"]
        self.assertIn(marker, log)
        self.assertIn("START RequestId: %s" % rid, log)
        self.assertIn("END RequestId: %s" % rid, log)
        self.assertRegex(log, r"REPORT RequestId: %s\s+Duration: [\d.]+ ms\s+Billed Duration: \d+ ms"
                              r"\s+Memory Size: 128 MB\s+Max Memory Used: \d+ MB" % re.escape(rid))
        self.assertIn("Init Duration", log, "cold start REPORT lacks Init Duration")
        self.assertLess(log.index("START"), log.index(marker))
        self.assertLess(log.index(marker), log.index("END RequestId"))
        # warm: no Init Duration, and nothing of the previous invocation
        resp2, _ = self.invoke({"action": "print", "text": "second"}, name=name, tail=True)
        log2 = self.log_of(resp2)
        self.assertIn("second", log2)
        self.assertNotIn(marker, log2, "tail of invocation 2 shows invocation 1's output")
        self.assertNotIn("Init Duration", log2, "warm invoke REPORT has Init Duration")

    def test_log_tail_is_last_4kb(self):
        text = "".join("line-%05d\n" % i for i in range(2000))  # ~22 KB
        resp, payload = self.invoke({"action": "print", "text": text}, tail=True)
        self.assertOk(resp, payload)
        raw = base64.b64decode(resp["LogResult"])
        self.assertLessEqual(len(raw), 4096)
        self.assertGreater(len(raw), 3000)
        self.assertIn(b"REPORT RequestId", raw)
        self.assertNotIn(b"line-00000\n", raw)

    def test_no_log_result_without_tail(self):
        resp, _ = self.invoke({"action": "print", "text": "x"})
        self.assertNotIn("LogResult", resp)

    # ------------------------------------------------------------ failures

    def test_handler_error_is_unhandled_function_error(self):
        resp, payload = self.invoke({"action": "raise"}, tail=True)
        self.assertFunctionError(resp, payload, self.error_type, re.escape(self.error_message))
        self.assertIn("END RequestId", self.log_of(resp))
        resp, payload = self.invoke({"action": "echo", "data": 1})
        self.assertOk(resp, payload)  # the sandbox survives a handled error

    def test_timeout_then_next_invoke_gets_fresh_sandbox(self):
        name, _ = self.make(Timeout=1)
        _, before = self.invoke({"action": "state"}, name=name)
        t0 = time.monotonic()
        # A sleep far past Timeout: the invoke ends long before it would, however slow
        # the machine is.
        resp, payload = self.invoke({"action": "sleep", "seconds": 40}, name=name)
        elapsed = time.monotonic() - t0
        self.assertEqual(resp.get("FunctionError"), "Unhandled", repr(payload))
        self.assertRegex(payload.get("errorMessage", ""), r"Task timed out after 1\.\d\d seconds")
        self.assertLess(elapsed, 20, "timeout not enforced promptly")
        resp, after = self.invoke({"action": "state"}, name=name)
        self.assertOk(resp, after)
        self.assertNotEqual(before["sandbox"], after["sandbox"], "timed-out sandbox reused")
        self.assertEqual(after["count"], 1)

    def test_exit_is_runtime_exit_error_then_fresh_sandbox(self):
        name, _ = self.make()
        _, before = self.invoke({"action": "state"}, name=name)
        resp, payload = self.invoke({"action": "exit", "code": 3}, name=name)
        self.assertFunctionError(resp, payload, "Runtime.ExitError")
        resp, after = self.invoke({"action": "state"}, name=name)
        self.assertOk(resp, after)
        self.assertNotEqual(before["sandbox"], after["sandbox"])

    # ------------------------------------------------------------ payload limits

    def test_5mb_payload_round_trip(self):
        data = "p" * (5 * MB)
        resp, payload = self.invoke({"action": "echo", "data": data})
        self.assertOk(resp, "(5 MB)")
        self.assertEqual(payload, data)

    def test_request_over_6mb_is_request_too_large(self):
        body = json.dumps({"action": "echo", "data": "q" * (LIMIT + 100)}).encode()
        self.assertClientError(lambda: self.lam.invoke(FunctionName=self.fn, Payload=body),
                               "RequestTooLargeException", 413)
        self.assertServing()
        resp, payload = self.invoke({"action": "echo", "data": 2})
        self.assertEqual(payload, 2)

    def test_response_over_6mb_is_function_error(self):
        resp, payload = self.invoke({"action": "big", "size": LIMIT + 100})
        self.assertFunctionError(resp, payload, "Function.ResponseSizeTooLarge",
                                 r"Response payload size.*exceeded maximum allowed payload size")
        resp, payload = self.invoke({"action": "echo", "data": 3})
        self.assertEqual(payload, 3)


class ManagedRuntimeMixin(InvokeMixin):
    def test_context_fields(self):
        resp, ctx = self.invoke({"action": "context"})
        self.assertOk(resp, ctx)
        self.assertEqual(ctx["aws_request_id"], resp["ResponseMetadata"]["RequestId"])
        self.assertEqual(ctx["function_name"], self.fn)
        self.assertEqual(ctx["function_version"], "$LATEST")
        self.assertEqual(ctx["invoked_function_arn"], self.created["FunctionArn"])
        self.assertEqual(ctx["memory_limit_in_mb"], 128)
        self.assertEqual(ctx["log_group_name"], "/aws/lambda/" + self.fn)
        self.assertTrue(ctx["log_stream_name"])
        self.assertGreater(ctx["remaining_ms"], 0)
        self.assertLessEqual(ctx["remaining_ms"], self.created["Timeout"] * 1000)

    def test_task_root_read_only_and_tmp_writable(self):
        resp, out = self.invoke({"action": "fs"})
        self.assertOk(resp, out)
        self.assertEqual(out["tmp"], "tmp-ok")
        if harness.is_jailed():
            self.assertNotEqual(out["task_write"], "ok", "/var/task is writable")

    def test_import_error_is_init_error(self):
        name, _ = self.make(handler="nosuchmodule.handler")
        resp, payload = self.invoke({}, name=name)
        self.assertFunctionError(resp, payload, "Runtime.ImportModuleError", "nosuchmodule")
        resp, payload = self.invoke({}, name=name)  # still failing, not hanging
        self.assertFunctionError(resp, payload, "Runtime.ImportModuleError")

    def test_missing_handler_is_handler_not_found(self):
        name, _ = self.make(handler=self.handler.split(".")[0] + ".nosuchexport")
        resp, payload = self.invoke({}, name=name)
        self.assertFunctionError(resp, payload, "Runtime.HandlerNotFound", "nosuchexport")


class PythonInvokeTest(ManagedRuntimeMixin, harness.KilnTestCase):
    runtime = "python3.11"
    error_type = "ValueError"
    error_message = "boom from python"

    def test_error_document_has_stack_trace(self):
        resp, payload = self.invoke({"action": "raise"})
        self.assertIsInstance(payload.get("stackTrace"), list, repr(payload))
        self.assertTrue(payload["stackTrace"], repr(payload))

    def test_syntax_error_is_user_code_syntax_error(self):
        name, _ = self.make(zip_bytes=harness.python_zip("def handler(:\n"))
        resp, payload = self.invoke({}, name=name)
        self.assertFunctionError(resp, payload, "Runtime.UserCodeSyntaxError")

    def test_module_init_runs_once_per_sandbox(self):
        src = "import time\nINIT = time.time()\ndef handler(e, c):\n    return INIT\n"
        name, _ = self.make(zip_bytes=harness.python_zip(src))
        _, a = self.invoke({}, name=name)
        _, b = self.invoke({}, name=name)
        self.assertEqual(a, b)


class NodeInvokeTest(ManagedRuntimeMixin, harness.KilnTestCase):
    runtime = "nodejs20.x"
    error_type = "Error"
    error_message = "boom from node"

    def test_callback_handler(self):
        name, _ = self.make(handler="index.callback")
        resp, payload = self.invoke({"x": 1}, name=name)
        self.assertOk(resp, payload)
        self.assertEqual(payload, {"via": "callback", "event": {"x": 1}})
        resp, payload = self.invoke({"action": "raise"}, name=name)
        self.assertFunctionError(resp, payload, "Error", "callback boom")

    def test_console_log_in_lambda_format(self):
        resp, _ = self.invoke({"action": "print", "text": "hello-node"}, tail=True)
        log = self.log_of(resp)
        rid = resp["ResponseMetadata"]["RequestId"]
        self.assertRegex(log, r"\d{4}-\d\d-\d\dT[\d:.]+Z\t%s\tINFO\thello-node" % re.escape(rid))

    def test_esm_handler(self):
        src = "export const handler = async (event) => ({esm: true, event});\n"
        name, _ = self.make(zip_bytes=harness.node_zip(src, filename="app.mjs"),
                            handler="app.handler")
        resp, payload = self.invoke({"y": 2}, name=name)
        self.assertOk(resp, payload)
        self.assertEqual(payload, {"esm": True, "event": {"y": 2}})


class ProvidedInvokeTest(InvokeMixin, harness.KilnTestCase):
    runtime = "provided.al2023"
    error_type = "Custom.HandlerBoom"
    error_message = "boom from provided"

    def test_next_headers(self):
        client_context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
        resp, headers = self.invoke({"action": "context"}, ClientContext=client_context)
        self.assertOk(resp, headers)
        rid = resp["ResponseMetadata"]["RequestId"]
        self.assertEqual(headers.get("lambda-runtime-aws-request-id"), rid)
        self.assertEqual(headers.get("lambda-runtime-invoked-function-arn"),
                         self.created["FunctionArn"])
        self.assertTrue(headers.get("lambda-runtime-trace-id"))
        self.assertEqual(json.loads(headers.get("lambda-runtime-client-context", "null")),
                         {"custom": {"k": "v"}}, repr(headers))
        deadline = int(headers["lambda-runtime-deadline-ms"])
        now_ms = time.time() * 1000
        self.assertLess(abs(deadline - (now_ms + self.created["Timeout"] * 1000)), 5000)

    def test_init_error_reports_runtime_error_type(self):
        name, _ = self.make(Environment={"Variables": {"INIT_MODE": "init_error"}})
        resp, payload = self.invoke({}, name=name)
        self.assertFunctionError(resp, payload, "Custom.InitBoom", "init went wrong")

    def test_bootstrap_exiting_during_init_is_exit_error(self):
        name, _ = self.make(Environment={"Variables": {"INIT_MODE": "exit"}})
        resp, payload = self.invoke({}, name=name)
        self.assertFunctionError(resp, payload, "Runtime.ExitError")

    def test_missing_bootstrap_is_invalid_entrypoint(self):
        name, _ = self.make(zip_bytes=harness.make_zip({"README": "no bootstrap here"}))
        resp, payload = self.invoke({}, name=name)
        self.assertFunctionError(resp, payload, "Runtime.InvalidEntrypoint")

    def test_provided_al2_runs_too(self):
        name = harness.unique_name("al2")
        harness.create_function(self.lam, name, self.zip, "provided.al2", "x.y")
        resp, payload = self.invoke({"action": "echo", "data": "al2"}, name=name)
        self.assertOk(resp, payload)
        self.assertEqual(payload, "al2")

    def test_c_echo_bootstrap_many_warm_invokes(self):
        zip_bytes = harness.c_bootstrap_zip()
        name, _ = self.make(zip_bytes=zip_bytes)
        for i in range(50):
            event = {"i": i, "s": "é" * i}
            resp = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
            self.assertNotIn("FunctionError", resp)
            self.assertEqual(json.loads(resp["Payload"].read()), event)


class IdleReapTest(harness.KilnTestCase):
    server_kwargs = {"idle_seconds": 1}

    def test_idle_sandbox_is_reaped(self):
        name = harness.unique_name("idle")
        harness.create_function(self.lam, name, harness.python_zip(functions.PYTHON),
                                "python3.11", "lambda_function.handler")
        call = lambda: json.loads(self.lam.invoke(FunctionName=name, Payload=b'{"action":"state"}')["Payload"].read())
        a, b = call(), call()
        self.assertEqual(a["sandbox"], b["sandbox"])
        harness.wait_until(lambda: not harness.sandboxes(self.server, name), "idle sandbox reaped")
        c = call()
        self.assertNotEqual(b["sandbox"], c["sandbox"], "idle sandbox not reaped after 1 s")



if __name__ == "__main__":
    harness.main()
