"""A third-party Runtime API client works unchanged on Kiln (issue 2).

Amazon's Node.js runtime interface client (npm aws-lambda-ric, built from the registry
by build_function.sh) runs as the bootstrap of a provided.al2023 function created and
invoked through boto3 against a real `kiln serve`. If the RIC cannot be built on this
machine (a missing tool or no npm registry), the class is skipped with the exact reason.
"""
import base64
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import harness  # noqa: E402
import ric_function  # noqa: E402

RUNTIME = "provided.al2023"
MEMORY_MB = 256


class RicOnKilnTest(harness.KilnTestCase):

    @classmethod
    def setUpClass(cls):
        cls.zip = ric_function.ric_zip()  # before the server: may skip the class
        super().setUpClass()
        common = {"MemorySize": MEMORY_MB, "Timeout": 30}
        cls.fn = harness.unique_name("ric")
        harness.create_function(cls.lam, cls.fn, cls.zip, RUNTIME, "app.handler", **common)
        cls.failing = harness.unique_name("ric-fails")
        harness.create_function(cls.lam, cls.failing, cls.zip, RUNTIME, "app.fails", **common)

    def invoke(self, name, event, **kw):
        resp = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
        body = resp["Payload"].read()
        try:
            return resp, json.loads(body)
        except ValueError:
            self.fail("invoke answered non-JSON %r\nserver log:\n%s"
                      % (body[:500], self.server.log_tail()))

    def assertOk(self, resp, payload):
        self.assertEqual(resp["StatusCode"], 200, repr(resp))
        self.assertNotIn("FunctionError", resp,
                         "payload %r\nserver log:\n%s" % (payload, self.server.log_tail()))

    def test_success_round_trips_payload_and_context(self):
        event = {"hello": "ric", "nested": {"list": [1, 2.5, None, True]}, "text": "h\u00e9 \u2603"}
        resp, payload = self.invoke(self.fn, event)
        self.assertOk(resp, payload)
        self.assertEqual(payload["event"], event)
        self.assertEqual(payload["requestId"], resp["ResponseMetadata"]["RequestId"])
        self.assertEqual(payload["functionName"], self.fn)
        self.assertEqual(payload["functionVersion"], "$LATEST")
        self.assertEqual(payload["memoryLimitInMB"], str(MEMORY_MB))
        self.assertRegex(payload["invokedFunctionArn"],
                         r"^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:%s$" % self.fn)
        self.assertGreater(payload["remainingMs"], 0)
        self.assertLessEqual(payload["remainingMs"], 30000)

    def test_handler_error_is_unhandled_function_error_with_ric_error_document(self):
        resp, payload = self.invoke(self.failing, {"why": "e2e"})
        self.assertEqual(resp["StatusCode"], 200, repr(resp))
        self.assertEqual(resp.get("FunctionError"), "Unhandled", repr(payload))
        self.assertEqual(payload["errorType"], "KilnTestError")
        self.assertEqual(payload["errorMessage"], "deliberate failure: e2e")
        self.assertIsInstance(payload.get("trace"), list)
        # The sandbox survives a handler error: the next invoke fails the same way.
        resp, payload = self.invoke(self.failing, {"why": "again"})
        self.assertEqual(resp.get("FunctionError"), "Unhandled", repr(payload))
        self.assertEqual(payload["errorMessage"], "deliberate failure: again")

    def test_second_invoke_is_warm_in_the_same_runtime_process(self):
        first_resp, first = self.invoke(self.fn, {"i": 1})
        second_resp, second = self.invoke(self.fn, {"i": 2})
        self.assertOk(first_resp, first)
        self.assertOk(second_resp, second)
        self.assertEqual((first["event"], second["event"]), ({"i": 1}, {"i": 2}))
        self.assertEqual(first["pid"], second["pid"], "second invoke was not warm")
        self.assertNotEqual(first["requestId"], second["requestId"])
        self.assertEqual(second["requestId"], second_resp["ResponseMetadata"]["RequestId"])

    def test_missing_handler_export_is_reported_as_runtime_handler_not_found(self):
        name, _ = self.create_function(self.zip, RUNTIME, "app.noSuchExport", Timeout=30)
        resp, payload = self.invoke(name, {})
        self.assertEqual(resp.get("FunctionError"), "Unhandled", repr(payload))
        self.assertEqual(payload["errorType"], "Runtime.HandlerNotFound", repr(payload))

    def test_tail_log_holds_the_report_of_the_ric_invocation(self):
        resp, payload = self.invoke(self.fn, {"log": True}, LogType="Tail")
        self.assertOk(resp, payload)
        log = base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")
        rid = payload["requestId"]
        self.assertIn("END RequestId: %s" % rid, log)
        # The RIC's console patch prefixes lines with time, request id and level.
        self.assertRegex(log, r"\t%s\tINFO\tric handler log %s" % (rid, rid))


if __name__ == "__main__":
    unittest.main(verbosity=2)
