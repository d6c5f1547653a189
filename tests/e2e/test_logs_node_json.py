"""Lambda's JSON log format on nodejs20.x: after UpdateFunctionConfiguration sets
LoggingConfig JSON / ApplicationLogLevel WARN, every line of the invoke's log tail is a
JSON object, console.info is dropped, console.warn and console.error are records with
the request id, and an Error logged alone is {errorType, errorMessage, stackTrace}."""
import base64
import json

import harness

NODE_LOGS = r'''
exports.handler = async (event, context) => {
  console.info('info-' + event.tag);
  console.debug('debug-' + event.tag);
  console.warn('warn-' + event.tag, {n: 1});
  console.error(new TypeError('error-' + event.tag));
  return {format: process.env.AWS_LAMBDA_LOG_FORMAT || null,
          level: process.env.AWS_LAMBDA_LOG_LEVEL || null};
};
'''


class NodeJsonLogFormatTest(harness.KilnTestCase):
    def invoke_tail(self, name, tag):
        resp = self.lam.invoke(FunctionName=name, LogType="Tail",
                               Payload=json.dumps({"tag": tag}).encode())
        payload = json.loads(resp["Payload"].read())
        self.assertNotIn("FunctionError", resp, payload)
        return payload, base64.b64decode(resp["LogResult"]).decode("utf-8")

    def test_update_to_json_warn_makes_json_records_and_drops_info(self):
        name, _ = self.create_function(harness.node_zip(NODE_LOGS), "nodejs20.x", "index.handler")
        payload, tail = self.invoke_tail(name, "text")
        self.assertEqual(payload, {"format": None, "level": None})
        self.assertIn("\tINFO\tinfo-text", tail)  # Text: Lambda's tab-separated lines

        cfg = self.lam.update_function_configuration(
            FunctionName=name, LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
        self.assertEqual(cfg["LoggingConfig"]["LogFormat"], "JSON")
        self.assertEqual(cfg["LoggingConfig"]["ApplicationLogLevel"], "WARN")
        harness.wait_active(self.lam, name)

        payload, tail = self.invoke_tail(name, "json")
        self.assertEqual(payload, {"format": "JSON", "level": "WARN"})
        lines = tail.splitlines()
        self.assertTrue(lines, tail)
        records = []
        for line in lines:
            self.assertTrue(line.startswith("{"), "not JSON: %r in\n%s" % (line, tail))
            records.append(json.loads(line))
        app = [r for r in records if "level" in r]
        self.assertEqual([r["level"] for r in app], ["WARN", "ERROR"], tail)  # INFO, DEBUG dropped
        self.assertNotIn("info-json", tail)
        warn, error = app
        self.assertEqual(warn["message"], "warn-json { n: 1 }")
        self.assertEqual(warn["requestId"], error["requestId"])
        self.assertTrue(warn["timestamp"].endswith("Z"), warn)
        self.assertEqual(error["message"]["errorType"], "TypeError")
        self.assertEqual(error["message"]["errorMessage"], "error-json")
        self.assertEqual(error["message"]["stackTrace"][0], "TypeError: error-json")
        report = [r for r in records if r.get("type") == "platform.report"]
        self.assertEqual(len(report), 1, tail)
        self.assertEqual(report[0]["record"]["requestId"], warn["requestId"])


if __name__ == "__main__":
    harness.main()
