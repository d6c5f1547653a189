"""Concurrency limits with boto3: reserved concurrency N runs exactly N at once and
throttles the rest with 429 TooManyRequestsException and Lambda's Reason; 0 disables;
a throttled function does not slow another; reservations survive a restart;
GetAccountSettings shows the limit and the unreserved pool; an account limit throttles."""
import json
import threading
import time

import boto3
import botocore.config
import botocore.exceptions

import functions
import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
SLEEP = {"action": "sleep", "seconds": 1.0}


def burst(lam, name, count, event=SLEEP):
    """`count` invokes started together; returns [(ok: bool, payload or ClientError)]."""
    results = [None] * count
    start = threading.Barrier(count)

    def one(i):
        start.wait()
        try:
            resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
            results[i] = (True, json.loads(resp["Payload"].read()))
        except botocore.exceptions.ClientError as e:
            results[i] = (False, e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


class ConcurrencyTest(harness.KilnTestCase):

    def setUp(self):
        if not self.server.running():
            self.server.start()
        self.__class__.lam = self.server.client()
        # Enough connections for a burst (botocore's default pool is 10).
        self.__class__.burst_lam = self.server.client(max_pool_connections=20)

    def make(self):
        name, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER, Timeout=30)
        return name

    def unreserved(self):
        return self.lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]

    def assertThrottled(self, err, reason):
        self.assertEqual(err.response["Error"]["Code"], "TooManyRequestsException")
        self.assertEqual(err.response["ResponseMetadata"]["HTTPStatusCode"], 429)
        self.assertEqual(err.response["Error"]["Message"], "Rate Exceeded.")
        self.assertEqual(err.response.get("Reason"), reason)

    def test_put_get_delete_and_get_function(self):
        name = self.make()
        self.assertNotIn("ReservedConcurrentExecutions", self.lam.get_function_concurrency(FunctionName=name))
        self.assertNotIn("Concurrency", self.lam.get_function(FunctionName=name))
        resp = self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
        self.assertEqual(resp["ReservedConcurrentExecutions"], 3)
        self.assertEqual(self.lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"], 3)
        self.assertEqual(self.lam.get_function(FunctionName=name)["Concurrency"],
                         {"ReservedConcurrentExecutions": 3})
        arn = self.lam.get_function_configuration(FunctionName=name)["FunctionArn"]
        self.lam.put_function_concurrency(FunctionName=arn, ReservedConcurrentExecutions=4)  # ARN form, replaces
        self.assertEqual(self.lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"], 4)
        self.lam.delete_function_concurrency(FunctionName=name)
        self.assertNotIn("ReservedConcurrentExecutions", self.lam.get_function_concurrency(FunctionName=name))
        self.assertNotIn("Concurrency", self.lam.get_function(FunctionName=name))

    def test_bad_requests(self):
        name = self.make()
        for call in (lambda: self.lam.put_function_concurrency(FunctionName="nope-x", ReservedConcurrentExecutions=1),
                     lambda: self.lam.get_function_concurrency(FunctionName="nope-x"),
                     lambda: self.lam.delete_function_concurrency(FunctionName="nope-x")):
            self.assertClientError(call, "ResourceNotFoundException", 404)
        self.assertClientError(
            lambda: self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=901),
            "InvalidParameterValueException", 400, msg_contains="below its minimum value of [100]")
        self.assertClientError(
            lambda: self.lam.put_function_concurrency(FunctionName=name + ":1", ReservedConcurrentExecutions=1),
            "InvalidParameterValueException", 400)
        path = "/2017-10-31/functions/%s/concurrency" % name
        for body in (b'{"ReservedConcurrentExecutions": -1}', b"{}"):
            r = harness.signed_request(self.server, "PUT", path, body)
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.header("x-amzn-ErrorType"), "ValidationException", r)
        self.assertNotIn("ReservedConcurrentExecutions", self.lam.get_function_concurrency(FunctionName=name))

    def test_account_settings_subtract_reservations(self):
        limit = self.lam.get_account_settings()["AccountLimit"]["ConcurrentExecutions"]
        self.assertEqual(limit, 1000)
        base = self.unreserved()
        a, b = self.make(), self.make()
        self.lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=5)
        self.lam.put_function_concurrency(FunctionName=b, ReservedConcurrentExecutions=7)
        self.assertEqual(self.unreserved(), base - 12)
        self.lam.delete_function_concurrency(FunctionName=a)
        self.assertEqual(self.unreserved(), base - 7)
        self.lam.delete_function(FunctionName=b)  # deleting a function frees its reservation
        self.assertEqual(self.unreserved(), base)

    def test_reserved_n_runs_exactly_n_and_throttles_the_rest(self):
        name = self.make()
        n = 2
        self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=n)
        results = burst(self.burst_lam, name, n + 3)
        ok = [r for good, r in results if good]
        refused = [r for good, r in results if not good]
        self.assertEqual(len(ok), n, results)
        self.assertEqual(len({r["sandbox"] for r in ok}), n)  # truly concurrent
        self.assertEqual(len(refused), 3, results)
        for err in refused:
            self.assertThrottled(err, "ReservedFunctionConcurrentInvocationLimitExceeded")
        # Slots come back when invocations end, errors included.
        self.lam.invoke(FunctionName=name, Payload=json.dumps({"action": "raise"}).encode())
        results = burst(self.burst_lam, name, n, {"action": "echo", "data": 1})
        self.assertTrue(all(good for good, _ in results), results)

    def test_zero_disables_the_function(self):
        name = self.make()
        self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.lam.invoke(FunctionName=name, Payload=b"{}")
        self.assertThrottled(cm.exception, "ReservedFunctionConcurrentInvocationLimitExceeded")
        self.lam.delete_function_concurrency(FunctionName=name)
        resp = self.lam.invoke(FunctionName=name, Payload=json.dumps({"action": "echo", "data": "on"}).encode())
        self.assertEqual(json.loads(resp["Payload"].read()), "on")

    def test_boto3_retries_a_throttle(self):
        name = self.make()
        self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
        akid, secret = self.server.keys
        cfg = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 3})
        retrying = boto3.session.Session(aws_access_key_id=akid, aws_secret_access_key=secret,
                                         region_name=harness.REGION).client(
            "lambda", endpoint_url=self.server.endpoint, config=cfg)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            retrying.invoke(FunctionName=name, Payload=b"{}")
        self.assertThrottled(cm.exception, "ReservedFunctionConcurrentInvocationLimitExceeded")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["RetryAttempts"], 2)

    def test_a_function_at_its_limit_does_not_slow_another(self):
        busy, other = self.make(), self.make()
        echo = json.dumps({"action": "echo", "data": 1}).encode()
        self.lam.invoke(FunctionName=other, Payload=echo)  # warm
        self.lam.put_function_concurrency(FunctionName=busy, ReservedConcurrentExecutions=1)
        def hold():  # one 15 s invoke of `busy`, retried while a probe below holds the slot
            for _ in range(100):
                try:
                    return self.burst_lam.invoke(
                        FunctionName=busy, Payload=json.dumps({"action": "sleep", "seconds": 15}).encode())
                except botocore.exceptions.ClientError:
                    time.sleep(0.05)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            deadline = time.monotonic() + 10
            while True:  # wait until `busy` is at its limit
                try:
                    self.lam.invoke(FunctionName=busy, Payload=echo)
                except botocore.exceptions.ClientError as e:
                    self.assertThrottled(e, "ReservedFunctionConcurrentInvocationLimitExceeded")
                    break
                self.assertLess(time.monotonic(), deadline)
            t0 = time.monotonic()
            for _ in range(5):
                resp = self.lam.invoke(FunctionName=other, Payload=echo)
                self.assertEqual(json.loads(resp["Payload"].read()), 1)
            # Warm invokes, not queued behind `busy` (which holds its slot for 15 s).
            self.assertLess(time.monotonic() - t0, 8.0)
        finally:
            holder.join(30)

    def test_reservations_survive_a_restart(self):
        name, zero = self.make(), self.make()
        self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=4)
        self.lam.put_function_concurrency(FunctionName=zero, ReservedConcurrentExecutions=0)
        before = self.unreserved()
        self.server.restart()
        self.__class__.lam = self.server.client()
        self.assertEqual(self.lam.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"], 4)
        self.assertEqual(self.unreserved(), before)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.lam.invoke(FunctionName=zero, Payload=b"{}")
        self.assertThrottled(cm.exception, "ReservedFunctionConcurrentInvocationLimitExceeded")


class AccountLimitTest(harness.KilnTestCase):
    server_kwargs = {"extra_args": ("--account-concurrency", "2")}

    def test_account_limit_throttles_and_shows_in_settings(self):
        limit = self.lam.get_account_settings()["AccountLimit"]
        self.assertEqual(limit["ConcurrentExecutions"], 2)
        self.assertEqual(limit["UnreservedConcurrentExecutions"], 2)
        name, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER, Timeout=30)
        results = burst(self.server.client(max_pool_connections=10), name, 5)
        self.assertEqual(sum(1 for good, _ in results if good), 2, results)
        for good, err in results:
            if not good:
                self.assertEqual(err.response["Error"]["Code"], "TooManyRequestsException")
                self.assertEqual(err.response.get("Reason"), "ConcurrentInvocationLimitExceeded")
        # Less than 100 left unreserved: no reservation above 0 fits.
        self.assertClientError(
            lambda: self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1),
            "InvalidParameterValueException", 400)


if __name__ == "__main__":
    import unittest
    unittest.main()
