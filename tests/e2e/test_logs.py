"""CloudWatch Logs API on Kiln's endpoint: boto3's logs client and paginators, the AWS
CLI's `aws logs tail --follow` and `aws logs filter-log-events` (v1 and v2), account
scoping, retention and DeleteLogGroup."""
import json
import os
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import botocore.exceptions

import functions
import harness


def invoke(lam, name, event):
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = resp["Payload"].read()
    return resp, body


def wait_for(predicate, timeout=20, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class LogsApiTest(harness.KilnTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.logs = cls.server.client("logs")
        cls.fn, _ = harness.create_function(cls.lam, harness.unique_name("logs"), harness.python_zip(functions.PYTHON),
                                            "python3.11", "lambda_function.handler"), None
        cls.fn = cls.fn["FunctionName"]
        cls.group = "/aws/lambda/" + cls.fn
        cls.marker = "marker-" + uuid.uuid4().hex
        for i in range(3):
            invoke(cls.lam, cls.fn, {"action": "print", "text": "%s line %d" % (cls.marker, i)})

    def events(self, **kw):
        out = []
        for page in self.logs.get_paginator("filter_log_events").paginate(logGroupName=self.group, **kw):
            out.extend(page["events"])
        return out

    def test_describe_log_groups_lists_the_function_group(self):
        groups = self.logs.describe_log_groups(logGroupNamePrefix=self.group)["logGroups"]
        self.assertEqual([g["logGroupName"] for g in groups], [self.group])
        g = groups[0]
        self.assertGreater(g["storedBytes"], 0)
        self.assertTrue(g["arn"].endswith(":log-group:%s:*" % self.group), g)
        all_groups = []
        for page in self.logs.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 1}):
            all_groups.extend(x["logGroupName"] for x in page["logGroups"])
        self.assertIn(self.group, all_groups)

    def test_describe_log_streams_and_get_log_events_show_platform_lines(self):
        streams = self.logs.describe_log_streams(logGroupName=self.group, orderBy="LastEventTime",
                                                 descending=True)["logStreams"]
        self.assertEqual(len(streams), 1)  # one warm sandbox served the three invokes
        stream = streams[0]["logStreamName"]
        self.assertRegex(stream, r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]+$")
        events = self.logs.get_log_events(logGroupName=self.group, logStreamName=stream,
                                          startFromHead=True)["events"]
        messages = [e["message"] for e in events]
        self.assertTrue(any(m.startswith("START RequestId: ") for m in messages), messages)
        self.assertTrue(any(m.startswith("END RequestId: ") for m in messages), messages)
        reports = [m for m in messages if m.startswith("REPORT RequestId: ")]
        self.assertEqual(len(reports), 3, messages)
        self.assertRegex(reports[0], r"Max Memory Used: \d+ MB")
        self.assertIn("%s line 1" % self.marker, messages)
        # Paging forward with tokens yields every event once, then the same token.
        seen, token = [], None
        for _ in range(100):
            kw = {"nextToken": token} if token else {"startFromHead": True}
            page = self.logs.get_log_events(logGroupName=self.group, logStreamName=stream, limit=2, **kw)
            if token == page["nextForwardToken"]:
                break
            seen.extend(e["message"] for e in page["events"])
            token = page["nextForwardToken"]
        self.assertEqual(seen, messages)

    def test_filter_log_events_terms_phrases_time_ranges_and_paginator(self):
        hits = self.events(filterPattern=self.marker)
        self.assertEqual([e["message"] for e in hits], ["%s line %d" % (self.marker, i) for i in range(3)])
        self.assertEqual(len({e["eventId"] for e in hits}), 3)
        phrase = self.events(filterPattern='"%s line 2"' % self.marker)
        self.assertEqual(len(phrase), 1)
        paged = []
        for page in self.logs.get_paginator("filter_log_events").paginate(
                logGroupName=self.group, PaginationConfig={"PageSize": 2}):
            self.assertLessEqual(len(page["events"]), 2)
            paged.extend(e["eventId"] for e in page["events"])
        self.assertEqual(len(paged), len(set(paged)))
        self.assertEqual(len(paged), len(self.events()))
        t = hits[1]["timestamp"]
        self.assertTrue(all(e["timestamp"] >= t for e in self.events(startTime=t)))
        self.assertEqual(self.events(startTime=0, endTime=1), [])

    def test_errors_are_cloudwatch_errors(self):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.logs.filter_log_events(logGroupName="/aws/lambda/no-such-fn")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.logs.filter_log_events(logGroupName=self.group, filterPattern="{ $.level = 1 }")
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterException")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.logs.get_log_events(logGroupName=self.group, logStreamName="nope")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.logs.put_retention_policy(logGroupName=self.group, retentionInDays=2)
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidParameterException")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.logs.create_export_task(logGroupName=self.group, fromTime=0, to=1, destination="b")
        self.assertEqual(cm.exception.response["Error"]["Code"], "UnknownOperationException")
        self.assertTrue(self.server.running())

    def test_retention_policy_round_trips(self):
        self.logs.put_retention_policy(logGroupName=self.group, retentionInDays=7)
        g = self.logs.describe_log_groups(logGroupNamePrefix=self.group)["logGroups"][0]
        self.assertEqual(g["retentionInDays"], 7)
        self.logs.delete_retention_policy(logGroupName=self.group)
        g = self.logs.describe_log_groups(logGroupNamePrefix=self.group)["logGroups"][0]
        self.assertNotIn("retentionInDays", g)
        self.assertTrue(self.events(filterPattern=self.marker))  # nothing expired

    def test_another_account_sees_nothing(self):
        r = harness.signed_request(self.server, "POST", "/admin/CreateAccessKey", b"{}", service="kiln")
        self.assertEqual(r.status, 200, r)
        key = r.json()
        other = self.server.client("logs", keys=(key["AccessKeyId"], key["SecretAccessKey"]))
        self.assertEqual(other.describe_log_groups()["logGroups"], [])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            other.filter_log_events(logGroupName=self.group)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        arn = "arn:aws:logs:%s:%s:log-group:%s" % (harness.REGION, key["AccountId"], self.group)
        with self.assertRaises(botocore.exceptions.ClientError):
            other.describe_log_streams(logGroupIdentifier=arn)

    def test_delete_log_group_then_new_invokes_recreate_it(self):
        name = harness.create_function(self.lam, harness.unique_name("logsdel"), harness.python_zip(functions.PYTHON),
                                       "python3.11", "lambda_function.handler")["FunctionName"]
        group = "/aws/lambda/" + name
        invoke(self.lam, name, {"action": "print", "text": "before delete"})
        self.logs.delete_log_group(logGroupName=group)
        self.assertEqual(self.logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"], [])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.logs.delete_log_group(logGroupName=group)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ResourceNotFoundException")
        invoke(self.lam, name, {"action": "print", "text": "after delete"})
        msgs = [e["message"] for e in self.logs.filter_log_events(logGroupName=group)["events"]]
        self.assertIn("after delete", msgs)
        self.assertNotIn("before delete", msgs)


class LogsCliTest(harness.KilnTestCase):
    """The AWS CLI's own logs commands, unchanged, against Kiln."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fn = harness.create_function(cls.lam, harness.unique_name("tail"), harness.python_zip(functions.PYTHON),
                                         "python3.11", "lambda_function.handler")["FunctionName"]
        cls.home = tempfile.mkdtemp(prefix="kiln-logs-cli-")
        cls.env = harness.clean_cli_env(cls.home)
        cls.env["AWS_ACCESS_KEY_ID"], cls.env["AWS_SECRET_ACCESS_KEY"] = cls.server.keys
        cls.env["AWS_DEFAULT_REGION"] = harness.REGION

    def tail_follow(self, version):
        marker = "tail-%d-%s" % (version, uuid.uuid4().hex)
        cmd = harness.cli_command(version) + ["logs", "tail", "/aws/lambda/" + self.fn, "--follow",
                                              "--format", "short", "--endpoint-url", self.server.endpoint]
        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        reader.start()
        try:
            # The first poll happens at once; events written after it arrive on a later
            # poll (the CLI sleeps 5 s between polls).
            invoke(self.lam, self.fn, {"action": "print", "text": marker + " first"})
            time.sleep(1)
            invoke(self.lam, self.fn, {"action": "print", "text": marker + " second"})
            got = wait_for(lambda: sum(marker in l for l in lines) >= 2, timeout=30)
            self.assertTrue(got, "aws logs tail --follow printed: %r (stderr so far unknown)" % lines)
            self.assertIsNone(proc.poll(), "tail --follow exited early")
        finally:
            proc.kill()
            out, err = proc.communicate(timeout=10)
        text = "".join(lines)
        self.assertEqual(text.count(marker + " first"), 1, text)  # no duplicates across polls
        self.assertEqual(text.count(marker + " second"), 1, text)
        self.assertIn("REPORT RequestId:", text)

    # `aws logs tail` exists in AWS CLI v2 only (v1 has no such command).
    def test_tail_follow_cli_v2(self):
        self.tail_follow(2)

    def test_filter_log_events_cli(self):
        marker = "filter-" + uuid.uuid4().hex
        invoke(self.lam, self.fn, {"action": "print", "text": marker})
        for version in (1, 2):
            r = harness.run_cli(version, ["logs", "filter-log-events", "--log-group-name", "/aws/lambda/" + self.fn,
                                          "--filter-pattern", marker, "--endpoint-url", self.server.endpoint,
                                          "--output", "json"], self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            events = json.loads(r.stdout)["events"]
            self.assertEqual([e["message"] for e in events], [marker])


if __name__ == "__main__":
    harness.main()
