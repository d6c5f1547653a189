"""Asynchronous invocations through boto3: event invoke config CRUD and its errors,
dead letters (admin API), fairness across functions, and refusal on a full disk."""
import json
import os
import subprocess
import time

from async_util import event_runs, recorder_zip, records, send_event, wait_for
from harness import KilnServer, KilnTestCase, main, signed_request, unique_name


def admin(server, action, args):
    r = signed_request(server, "POST", "/admin/" + action, json.dumps(args), service="kiln",
                       headers={"Content-Type": "application/json"})
    return r.status, (r.json() if r.body else {})


class EventInvokeConfigApi(KilnTestCase):
    def setUp(self):
        self.name, resp = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        self.arn = resp["FunctionArn"]
        self.dest, dresp = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        self.dest_arn = dresp["FunctionArn"]

    def test_put_get_update_list_delete(self):
        put = self.lam.put_function_event_invoke_config(
            FunctionName=self.name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=120,
            DestinationConfig={"OnFailure": {"Destination": self.dest_arn}})
        self.assertEqual(put["FunctionArn"], self.arn + ":$LATEST")
        self.assertEqual(put["MaximumRetryAttempts"], 1)
        self.assertEqual(put["MaximumEventAgeInSeconds"], 120)
        self.assertEqual(put["DestinationConfig"]["OnFailure"]["Destination"], self.dest_arn)
        got = self.lam.get_function_event_invoke_config(FunctionName=self.name)
        self.assertEqual(got["MaximumRetryAttempts"], 1)
        self.assertEqual(got["DestinationConfig"]["OnFailure"]["Destination"], self.dest_arn)
        upd = self.lam.update_function_event_invoke_config(
            FunctionName=self.name, MaximumRetryAttempts=0,
            DestinationConfig={"OnSuccess": {"Destination": self.dest_arn}})
        self.assertEqual(upd["MaximumRetryAttempts"], 0)
        self.assertEqual(upd["MaximumEventAgeInSeconds"], 120)  # kept by an update
        self.assertEqual(upd["DestinationConfig"]["OnSuccess"]["Destination"], self.dest_arn)
        self.assertEqual(upd["DestinationConfig"]["OnFailure"]["Destination"], self.dest_arn)
        # Put replaces the whole config.
        put2 = self.lam.put_function_event_invoke_config(FunctionName=self.arn, MaximumRetryAttempts=2)
        self.assertNotIn("MaximumEventAgeInSeconds", put2)
        self.assertNotIn("Destination", put2["DestinationConfig"]["OnSuccess"])
        listed = self.lam.list_function_event_invoke_configs(FunctionName=self.name)
        self.assertEqual([c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]], [self.arn + ":$LATEST"])
        self.lam.delete_function_event_invoke_config(FunctionName=self.name)
        self.assertClientError(lambda: self.lam.get_function_event_invoke_config(FunctionName=self.name),
                               "ResourceNotFoundException", 404)
        self.assertEqual(self.lam.list_function_event_invoke_configs(FunctionName=self.name)
                         ["FunctionEventInvokeConfigs"], [])
        # Survives a restart.
        self.lam.put_function_event_invoke_config(FunctionName=self.name, MaximumRetryAttempts=1)
        self.server.restart()
        self.assertEqual(self.lam.get_function_event_invoke_config(FunctionName=self.name)
                         ["MaximumRetryAttempts"], 1)

    def test_errors(self):
        missing = unique_name("missing")
        for call in (lambda: self.lam.put_function_event_invoke_config(FunctionName=missing),
                     lambda: self.lam.get_function_event_invoke_config(FunctionName=missing),
                     lambda: self.lam.delete_function_event_invoke_config(FunctionName=missing),
                     lambda: self.lam.list_function_event_invoke_configs(FunctionName=missing)):
            self.assertClientError(call, "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.update_function_event_invoke_config(
            FunctionName=self.name, MaximumRetryAttempts=1), "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.delete_function_event_invoke_config(FunctionName=self.name),
                               "ResourceNotFoundException", 404)
        for dest in ("arn:aws:sqs:us-east-1:123456789012:queue",
                     "arn:aws:sns:us-east-1:123456789012:topic",
                     "arn:aws:events:us-east-1:123456789012:event-bus/default"):
            self.assertClientError(lambda: self.lam.put_function_event_invoke_config(
                FunctionName=self.name, DestinationConfig={"OnFailure": {"Destination": dest}}),
                "InvalidParameterValueException", 400, msg_contains="Lambda function destinations only")
        nowhere = self.arn.rsplit(":", 1)[0] + ":" + unique_name("nowhere")
        self.assertClientError(lambda: self.lam.put_function_event_invoke_config(
            FunctionName=self.name, DestinationConfig={"OnSuccess": {"Destination": nowhere}}),
            "InvalidParameterValueException", 400)
        self.assertClientError(lambda: self.lam.put_function_event_invoke_config(
            FunctionName=self.name, DestinationConfig={"OnSuccess": {"Destination": self.arn}}),
            "InvalidParameterValueException", 400)
        # Out-of-range values, past boto3's own validation.
        raw = self.server.client(validate=False)
        import botocore.exceptions
        for kw in ({"MaximumRetryAttempts": 3}, {"MaximumRetryAttempts": -1},
                   {"MaximumEventAgeInSeconds": 59}, {"MaximumEventAgeInSeconds": 21601}):
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                raw.put_function_event_invoke_config(FunctionName=self.name, **kw)
            self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400, kw)
        r = signed_request(self.server, "PUT", "/2019-09-25/functions/%s/event-invoke-config" % self.name,
                           "{not json")
        self.assertEqual(r.status, 400, r)
        # Payloads over the 1 MB async limit are refused before anything is queued.
        self.assertClientError(lambda: self.lam.invoke(FunctionName=self.name, InvocationType="Event",
                                                       Payload=b'"' + b"x" * (1024 * 1024) + b'"'),
                               ("RequestTooLargeException",), 413)

    def test_failed_event_becomes_a_dead_letter_that_replays(self):
        self.lam.put_function_event_invoke_config(FunctionName=self.name, MaximumRetryAttempts=0)
        rid = send_event(self.lam, self.name, {"id": "dl1", "fail": True})
        letters = wait_for(lambda: admin(self.server, "ListDeadLetters", {"FunctionName": self.name})[1]
                           .get("DeadLetters"), 60, "the dead letter")
        self.assertEqual(len(letters), 1)
        d = letters[0]
        self.assertEqual(d["RequestId"], rid)
        self.assertEqual(d["FunctionArn"], self.arn)
        self.assertEqual(d["Qualifier"], "$LATEST")
        self.assertEqual(d["Condition"], "RetriesExhausted")
        self.assertEqual(d["Attempts"], 1)
        self.assertIn("boom dl1", d["LastError"])
        self.assertEqual(json.loads(d["Payload"]), {"id": "dl1", "fail": True})
        self.assertIsInstance(d["FirstAttemptEpochMs"], int)
        self.assertEqual(admin(self.server, "ListDeadLetters", {"FunctionName": self.dest})[1]["DeadLetters"], [])
        status, out = admin(self.server, "ReplayDeadLetter", {"Id": d["Id"]})
        self.assertEqual(status, 200, out)
        self.assertNotEqual(out["RequestId"], rid)
        wait_for(lambda: len(event_runs(self.server, self.name).get("dl1", [])) >= 2, 60, "the replay to run")
        self.assertIn(out["RequestId"], [r for _, r in event_runs(self.server, self.name)["dl1"]])
        self.assertEqual(admin(self.server, "ReplayDeadLetter", {"Id": d["Id"]})[0], 404)
        self.assertEqual(admin(self.server, "ReplayDeadLetter", {})[0], 400)
        self.assertEqual(admin(self.server, "ListDeadLetters", {"MaxItems": 0})[0], 400)

    def test_on_success_destination_receives_the_record(self):
        self.lam.put_function_event_invoke_config(
            FunctionName=self.name, DestinationConfig={"OnSuccess": {"Destination": self.dest_arn}})
        rid = send_event(self.lam, self.name, {"id": "ok1"})
        rec = wait_for(lambda: records(self.server, self.dest), 60, "the OnSuccess record")[0]
        self.assertEqual(rec["requestContext"], {"requestId": rid, "functionArn": self.arn + ":$LATEST",
                                                 "condition": "Success", "approximateInvokeCount": 1})
        self.assertEqual(rec["responseContext"], {"statusCode": 200, "executedVersion": "$LATEST"})
        self.assertEqual(rec["responsePayload"], {"ok": "ok1"})
        self.assertEqual(rec["requestPayload"], {"id": "ok1"})

    def test_one_functions_backlog_does_not_starve_another(self):
        busy, quiet = self.name, self.dest
        for i in range(150):
            send_event(self.lam, busy, {"id": "b%d" % i, "sleep": 0.05})
        t0 = time.time()
        send_event(self.lam, quiet, {"id": "q"})
        runs = wait_for(lambda: event_runs(self.server, quiet).get("q"), 60, "the quiet function's event")
        busy_runs = event_runs(self.server, busy)
        self.assertLess(len(busy_runs), 150, "the quiet event waited for the whole backlog")
        print("\nfairness: quiet event ran %.2fs after it was sent, with %d of 150 busy events done"
              % (runs[0][0] / 1000.0 - t0, len(busy_runs)))
        wait_for(lambda: len(event_runs(self.server, busy)) == 150, 90, "the backlog to drain")


class AsyncFullDisk(KilnTestCase):
    """The async store on a tiny tmpfs: filling it makes Kiln refuse events (500), never
    acknowledge them; freeing space makes it accept again."""

    @classmethod
    def setUpClass(cls):
        import shutil
        import unittest
        cls.mounted = None
        super().setUpClass()
        # Restart the server with DATA_DIR/async on a 4 MB tmpfs.
        cls.server.stop()
        cls.store_dir = os.path.join(cls.server.data_dir, "async")
        shutil.rmtree(cls.store_dir, ignore_errors=True)
        os.makedirs(cls.store_dir)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", cls.store_dir], capture_output=True)
        if r.returncode != 0:
            cls.server.cleanup()
            raise unittest.SkipTest("cannot mount a tmpfs (%s)" % r.stderr.decode().strip())
        cls.mounted = cls.store_dir
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.server.stop()
        finally:
            if cls.mounted:
                subprocess.run(["umount", "-l", cls.mounted])
            super().tearDownClass()

    def test_full_disk_refuses_events_and_recovers(self):
        name, _ = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        send_event(self.lam, name, {"id": "before"})
        filler = os.path.join(self.store_dir, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        big = {"id": "big", "pad": "x" * 200000}
        self.assertClientError(lambda: send_event(self.lam, name, big), "ServiceException", 500,
                               msg_contains="could not be made durable")
        os.unlink(filler)
        send_event(self.lam, name, {"id": "after"})
        wait_for(lambda: {"before", "after"} <= set(event_runs(self.server, name)), 60, "the accepted events")
        self.assertNotIn("big", event_runs(self.server, name))
        self.assertServing()


if __name__ == "__main__":
    main()
