"""Asynchronous invocations survive kill -9: acknowledged events, retries in backoff and
destination deliveries all complete after a restart (issue 4, crash safety)."""
import json
import threading
import time

import botocore.exceptions

from async_util import event_runs, recorder_zip, records, send_event, wait_for
from harness import KilnTestCase, main

ACCOUNT_FN = "arn:aws:lambda:us-east-1:%s:function:%s"


class AsyncCrashSafety(KilnTestCase):
    server_kwargs = {"extra_args": ["--async-retry-base-ms", "1500"]}

    def arn(self, name):
        return self.lam.get_function_configuration(FunctionName=name)["FunctionArn"]

    def test_every_acknowledged_event_runs_after_kill9_mid_stream(self):
        name, _ = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        total, threads = 2000, 16
        acked, lock = {}, threading.Lock()
        half = threading.Event()
        next_id = iter(range(total))
        id_lock = threading.Lock()

        def sender():
            lam = self.server.client()
            while True:
                with id_lock:
                    i = next(next_id, None)
                if i is None:
                    return
                rid = None
                for _ in range(600):  # while the server restarts, try the same event again
                    try:
                        rid = send_event(lam, name, {"id": "e%d" % i})
                        break
                    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                        time.sleep(0.05)  # not acknowledged (the server died under it): no promise
                if rid is None:
                    continue
                with lock:
                    acked["e%d" % i] = rid
                    if len(acked) >= total // 2:
                        half.set()

        workers = [threading.Thread(target=sender) for _ in range(threads)]
        for t in workers:
            t.start()
        half.wait(120)
        self.server.kill9()
        killed_at = len(acked)
        self.server.start()
        for t in workers:
            t.join()
        self.assertGreater(len(acked), killed_at)  # the senders went on after the restart

        def all_ran():
            runs = event_runs(self.server, name)
            return runs if all(i in runs for i in acked) else None
        runs = wait_for(all_ran, 150, "every acknowledged event to run")
        missing = [i for i in acked if i not in runs]
        self.assertEqual(missing, [])
        for i, rid in acked.items():  # every attempt ran with the event's own request id
            self.assertIn(rid, {r for _, r in runs[i]}, i)
        duplicates = sum(len(v) - 1 for v in runs.values())
        print("\nasync crash test: %d acknowledged (%d before kill -9), %d ran, %d duplicate runs"
              % (len(acked), killed_at, len(runs), duplicates))

    def test_retry_in_backoff_completes_after_kill9(self):
        dest, _ = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        name, _ = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        self.lam.put_function_event_invoke_config(
            FunctionName=name, MaximumRetryAttempts=2,
            DestinationConfig={"OnFailure": {"Destination": self.arn(dest)}})
        rid = send_event(self.lam, name, {"id": "r1", "fail": True})
        wait_for(lambda: len(event_runs(self.server, name).get("r1", [])) >= 1, 60, "the first attempt")
        self.server.kill9()  # the first retry waits 1.5 s: we are in its backoff
        self.server.start()
        recs = wait_for(lambda: records(self.server, dest), 60, "the OnFailure record")
        rec = recs[0]
        self.assertEqual(rec["requestContext"]["requestId"], rid)
        self.assertEqual(rec["requestContext"]["condition"], "RetriesExhausted")
        self.assertEqual(rec["requestContext"]["functionArn"], self.arn(name) + ":$LATEST")
        self.assertGreaterEqual(rec["requestContext"]["approximateInvokeCount"], 3)
        self.assertEqual(rec["requestPayload"], {"id": "r1", "fail": True})
        self.assertEqual(rec["responseContext"]["functionError"], "Unhandled")
        self.assertIn("boom r1", json.dumps(rec["responsePayload"]))
        self.assertEqual(rec["version"], "1.0")
        self.assertGreaterEqual(len(event_runs(self.server, name)["r1"]), 3)

    def test_destination_delivery_interrupted_by_kill9_still_arrives(self):
        dest, _ = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler", Timeout=30)
        name, _ = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        self.lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": self.arn(dest)}})
        rid = send_event(self.lam, name, {"id": "d1", "dest_sleep": 3})
        # The destination prints the record, then sleeps: kill -9 while it runs.
        wait_for(lambda: records(self.server, dest), 60, "the destination to start")
        self.server.kill9()
        self.server.start()
        recs = wait_for(lambda: len(records(self.server, dest)) >= 2 and records(self.server, dest),
                        60, "the destination to run again after the restart")
        for rec in recs:
            self.assertEqual(rec["requestContext"]["requestId"], rid)
            self.assertEqual(rec["requestContext"]["condition"], "Success")
            self.assertEqual(rec["responsePayload"], {"ok": "d1"})
        self.assertEqual(len(event_runs(self.server, name)["d1"]), 1)  # the source ran once


if __name__ == "__main__":
    main()
