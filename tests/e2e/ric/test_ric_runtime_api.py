"""Amazon's aws-lambda-ric, run by our bootstrap against a minimal Runtime API server.

Needs no Kiln: it proves the function zip itself (bootstrap, handler, RIC build) speaks
the 2018-06-01 Runtime API with only what a Kiln sandbox offers: /usr from the host, the
zip's contents at LAMBDA_TASK_ROOT, a few Lambda variables, no HOME, cwd elsewhere.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ric_function  # noqa: E402
from minimal_runtime_api import PREFIX, MinimalRuntimeApi  # noqa: E402

FUNCTION_NAME = "ric-check"


def lambda_env(api, task_root, handler):
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": task_root,
        "_HANDLER": handler,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    }


class Runtime:
    """The bootstrap as a Lambda provided runtime would start it; stopped by stop().

    minimal_root: run it chrooted (run_in_minimal_root.sh) with the zip at /var/task.
    """

    def __init__(self, task_root, api, handler, minimal_root=False):
        work = os.path.dirname(task_root)
        self.log_path = os.path.join(work, "runtime-%s.log" % handler)
        if minimal_root:
            env = lambda_env(api, "/var/task", handler)
            argv = (["unshare", "--mount", "--fork", "--kill-child",
                     os.path.join(HERE, "run_in_minimal_root.sh"), task_root]
                    + ["%s=%s" % kv for kv in env.items()] + ["/var/task/bootstrap"])
            env, cwd = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR": work}, work
        else:
            argv = [os.path.join(task_root, "bootstrap")]
            env, cwd = lambda_env(api, task_root, handler), "/"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        # The whole session: with --kill-child the chrooted runtime dies with unshare.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


class RicAgainstMinimalApiTest(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln-ric-check-")
        cls.task_root = ric_function.extract(ric_function.ric_zip(),
                                             os.path.join(cls.tmp, "task"))
        cls.task_files = sorted(os.listdir(cls.task_root))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    minimal_root = False

    def start(self, handler):
        api = MinimalRuntimeApi().start()
        self.addCleanup(api.stop)
        runtime = Runtime(self.task_root, api, handler, self.minimal_root)
        self.addCleanup(runtime.stop)
        return api, runtime

    def invoke(self, api, runtime, payload):
        try:
            return api.invoke(payload, timeout=30)
        except TimeoutError as e:
            self.fail("%s\nruntime exit=%s log:\n%s" % (e, runtime.proc.poll(), runtime.log()))

    def test_polls_next_and_posts_response_with_context(self):
        api, runtime = self.start("app.handler")
        event = {"hello": "kiln", "n": [1, 2.5, None], "unicode": "h\u00e9llo \u2603"}
        result = self.invoke(api, runtime, json.dumps(event).encode())
        self.assertEqual(result.kind, "response", runtime.log())
        body = json.loads(result.body)
        self.assertEqual(body["event"], event)
        self.assertEqual(body["requestId"], result.request_id)
        self.assertEqual(body["functionName"], FUNCTION_NAME)
        self.assertEqual(body["functionVersion"], "$LATEST")
        self.assertEqual(body["memoryLimitInMB"], "128")
        self.assertTrue(body["invokedFunctionArn"].endswith(":function:ric-check"))
        self.assertGreater(body["remainingMs"], 0)
        self.assertLessEqual(body["remainingMs"], api.deadline_ms)
        self.assertEqual(api.requests[:2], [
            ("GET", PREFIX + "/invocation/next"),
            ("POST", PREFIX + "/invocation/%s/response" % result.request_id)])

    def test_handler_console_log_reaches_stdout_with_request_id(self):
        api, runtime = self.start("app.handler")
        result = self.invoke(api, runtime, b'{"log": true}')
        self.assertEqual(result.kind, "response")
        rid = result.request_id
        self.assertRegex(runtime.log(), r"\t%s\tINFO\tric handler log %s" % (rid, rid))

    def test_second_invoke_is_served_by_the_same_warm_process(self):
        api, runtime = self.start("app.handler")
        first = json.loads(self.invoke(api, runtime, b'{"i": 1}').body)
        second = json.loads(self.invoke(api, runtime, b'{"i": 2}').body)
        self.assertEqual(first["event"], {"i": 1})
        self.assertEqual(second["event"], {"i": 2})
        self.assertEqual(first["pid"], second["pid"])
        self.assertNotEqual(first["requestId"], second["requestId"])
        self.assertIsNone(runtime.proc.poll(), "runtime exited after two invokes")

    def test_non_object_events_round_trip(self):
        api, runtime = self.start("app.handler")
        for event in ("a string", 42, [1, "two"], None):
            result = self.invoke(api, runtime, json.dumps(event).encode())
            self.assertEqual(result.kind, "response", runtime.log())
            self.assertEqual(json.loads(result.body)["event"], event)

    def test_handler_error_posts_error_document(self):
        api, runtime = self.start("app.fails")
        result = self.invoke(api, runtime, b'{"why": "test"}')
        self.assertEqual(result.kind, "error", runtime.log())
        doc = json.loads(result.body)
        self.assertEqual(doc["errorType"], "KilnTestError")
        self.assertEqual(doc["errorMessage"], "deliberate failure: test")
        self.assertIsInstance(doc.get("trace"), list)
        # The RIC's native client does not send Lambda-Runtime-Function-Error-Type on
        # invocation errors: a Runtime API must take the type from the body.
        self.assertIsNone(result.header("Lambda-Runtime-Function-Error-Type"))
        # The process stays up for the next event after a handler error.
        again = self.invoke(api, runtime, b'{"why": "again"}')
        self.assertEqual(json.loads(again.body)["errorMessage"], "deliberate failure: again")

    def test_missing_handler_posts_init_error_and_exits(self):
        api, runtime = self.start("app.noSuchExport")
        result = api.init_error(timeout=30)
        self.assertEqual(result.kind, "init_error", runtime.log())
        self.assertEqual(json.loads(result.body)["errorType"], "Runtime.HandlerNotFound")
        self.assertEqual(result.header("Lambda-Runtime-Function-Error-Type"),
                         "Runtime.HandlerNotFound")
        self.assertNotEqual(runtime.proc.wait(timeout=30), 0)
        self.assertNotIn(("GET", PREFIX + "/invocation/next"), api.requests)

    def test_missing_module_posts_import_error(self):
        api, runtime = self.start("nomodule.handler")
        result = api.init_error(timeout=30)
        self.assertEqual(json.loads(result.body)["errorType"], "Runtime.ImportModuleError",
                         runtime.log())
        self.assertNotEqual(runtime.proc.wait(timeout=30), 0)

    def test_bootstrap_refuses_to_start_without_handler(self):
        env = {"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": self.task_root}
        proc = subprocess.run([os.path.join(self.task_root, "bootstrap")], env=env,
                              capture_output=True, text=True, timeout=30)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("_HANDLER", proc.stderr)

    def test_runtime_writes_nothing_into_the_task_root(self):
        api, runtime = self.start("app.handler")
        self.invoke(api, runtime, b"{}")
        self.assertEqual(sorted(os.listdir(self.task_root)), self.task_files)
        ric = os.path.join(self.task_root, "node_modules", "aws-lambda-ric")
        self.assertEqual(sorted(os.listdir(ric)), ["LICENSE", "NOTICE", "THIRD-PARTY-LICENSES",
                                                   "bin", "dist", "package.json"])


def minimal_root_unavailable():
    if os.geteuid() != 0:
        return "needs root to mount and chroot (euid %d)" % os.geteuid()
    if not shutil.which("unshare") or not shutil.which("chroot"):
        return "unshare or chroot not on PATH (Debian package util-linux, coreutils)"
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return "cannot make a mount namespace here: " + probe.stderr.strip()
    return None


@unittest.skipIf(minimal_root_unavailable(), minimal_root_unavailable())
class RicInMinimalRootTest(RicAgainstMinimalApiTest):
    """The same checks with the runtime chrooted into only what a sandbox offers."""
    minimal_root = True


if __name__ == "__main__":
    unittest.main(verbosity=2)
