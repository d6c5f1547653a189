"""Bounded logs and Lambda's JSON log format: a flood of output stays under the
per-function cap (KILN_LOG_MAX_BYTES_PER_FUNCTION) without slowing another function;
LoggingConfig round-trips, reaches the runtime (AWS_LAMBDA_LOG_FORMAT/LEVEL) and turns
START/REPORT into platform.start/platform.report records."""
import json
import os
import time
import unittest

import botocore.exceptions

import functions
import harness

CAP = 2 * 1024 * 1024

FLOOD = r'''
import sys
def handler(event, context):
    line = "x" * 1023 + "\n"
    for _ in range(event["kb"]):
        sys.stdout.write(line)
    sys.stdout.flush()
    return "flooded"
'''

LOGGING = r'''
import logging, os
def handler(event, context):
    logging.getLogger().debug("debug-%s" % event["tag"])
    logging.getLogger().info("info-%s" % event["tag"])
    logging.getLogger().warning("warn-%s" % event["tag"])
    return {"format": os.environ.get("AWS_LAMBDA_LOG_FORMAT"), "level": os.environ.get("AWS_LAMBDA_LOG_LEVEL")}
'''


class LogBoundsTest(harness.KilnTestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["KILN_LOG_MAX_BYTES_PER_FUNCTION"] = str(CAP)
        try:
            super().setUpClass()
        finally:
            del os.environ["KILN_LOG_MAX_BYTES_PER_FUNCTION"]
        cls.logs = cls.server.client("logs")

    def test_flood_stays_under_the_cap_and_keeps_the_newest(self):
        name, _ = self.create_function(harness.python_zip(FLOOD), "python3.11", "lambda_function.handler", Timeout=60)
        quiet, _ = self.create_function(harness.python_zip(functions.PYTHON), "python3.11", "lambda_function.handler")
        self.lam.invoke(FunctionName=quiet, Payload=b'{"action": "echo", "data": 1}')["Payload"].read()
        for _ in range(8):  # 8 x 1 MB through a 2 MB cap
            r = self.lam.invoke(FunctionName=name, Payload=b'{"kb": 1024}')
            self.assertEqual(r["Payload"].read(), b'"flooded"')
        # The other function stays quick while the flood is on disk.
        t = time.monotonic()
        self.lam.invoke(FunctionName=quiet, Payload=b'{"action": "echo", "data": 2}')["Payload"].read()
        self.assertLess(time.monotonic() - t, 2.0)
        group = self.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/" + name)["logGroups"][0]
        # One open segment per live sandbox may overshoot (CAP/8 each).
        self.assertLessEqual(group["storedBytes"], CAP + CAP // 8 + 4096, group)
        on_disk = 0
        for root, _, files in os.walk(os.path.join(self.server.data_dir, "logs")):
            if root.endswith("/" + name):
                on_disk += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        self.assertLessEqual(on_disk, CAP + CAP // 8 + 8192)
        events = self.logs.filter_log_events(logGroupName="/aws/lambda/" + name, filterPattern="REPORT")["events"]
        self.assertTrue(events, "the newest REPORT lines survive eviction")


class JsonLogFormatTest(harness.KilnTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.logs = cls.server.client("logs")

    def messages(self, name):
        return [e["message"] for e in self.logs.filter_log_events(logGroupName="/aws/lambda/" + name)["events"]]

    def test_json_format_platform_records_and_application_level(self):
        name, created = self.create_function(harness.python_zip(LOGGING), "python3.11", "lambda_function.handler",
                                             LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
        self.assertEqual(created["LoggingConfig"], {"LogFormat": "JSON", "ApplicationLogLevel": "WARN",
                                                    "SystemLogLevel": "INFO", "LogGroup": "/aws/lambda/" + name})
        out = json.loads(self.lam.invoke(FunctionName=name, Payload=b'{"tag": "a"}')["Payload"].read())
        self.assertEqual(out, {"format": "JSON", "level": "WARN"})
        msgs = self.messages(name)
        records = [json.loads(m) for m in msgs if m.startswith("{")]
        types = [r.get("type") for r in records]
        self.assertIn("platform.start", types)
        self.assertIn("platform.report", types)
        self.assertFalse(any(m.startswith(("START ", "END ", "REPORT ")) for m in msgs), msgs)
        report = [r for r in records if r.get("type") == "platform.report"][0]
        for k in ("durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"):
            self.assertIn(k, report["record"]["metrics"])
        self.assertEqual(report["record"]["status"], "success")
        app = [r for r in records if "level" in r]
        self.assertEqual([r["message"] for r in app], ["warn-a"])  # INFO and DEBUG filtered
        self.assertEqual(app[0]["level"], "WARNING")
        self.assertIn("requestId", app[0])

    def test_system_level_warn_hides_platform_records_and_text_is_default(self):
        name, _ = self.create_function(harness.python_zip(LOGGING), "python3.11", "lambda_function.handler",
                                       LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "WARN"})
        self.lam.invoke(FunctionName=name, Payload=b'{"tag": "b"}')["Payload"].read()
        msgs = self.messages(name)
        self.assertFalse(any('"platform.' in m for m in msgs), msgs)
        self.assertTrue(any('"info-b"' in m for m in msgs), msgs)
        cfg = self.lam.update_function_configuration(FunctionName=name, LoggingConfig={"LogFormat": "Text"})
        self.assertEqual(cfg["LoggingConfig"], {"LogFormat": "Text", "LogGroup": "/aws/lambda/" + name})
        harness.wait_active(self.lam, name)
        out = json.loads(self.lam.invoke(FunctionName=name, Payload=b'{"tag": "c"}')["Payload"].read())
        self.assertEqual(out, {"format": None, "level": None})
        msgs = self.messages(name)
        self.assertTrue(any(m.startswith("REPORT RequestId:") for m in msgs), msgs)
        self.assertTrue(any(m.startswith("[WARNING]") and "warn-c" in m for m in msgs), msgs)

    def test_bad_logging_configs_are_refused(self):
        zip_bytes = harness.python_zip(LOGGING)
        for cfg, code in (({"LogFormat": "XML"}, "ValidationException"),
                          ({"LogFormat": "Text", "ApplicationLogLevel": "WARN"}, "InvalidParameterValueException"),
                          ({"LogFormat": "JSON", "SystemLogLevel": "ERROR"}, "ValidationException"),
                          ({"LogFormat": "JSON", "LogGroup": "/custom/group"}, "InvalidParameterValueException")):
            lam = self.server.client(validate=False)
            with self.assertRaises(botocore.exceptions.ClientError, msg=cfg) as cm:
                harness.create_function(lam, harness.unique_name("badlog"), zip_bytes, "python3.11",
                                        "lambda_function.handler", LoggingConfig=cfg)
            self.assertEqual(cm.exception.response["Error"]["Code"], code, cfg)


if __name__ == "__main__":
    harness.main()
