"""Host capacity with boto3: with a tiny --sandbox-memory-mb, a new sandbox reclaims idle
sandboxes of other functions (oldest first) rather than failing the invoke; when only
busy sandboxes hold the memory, the invoke is refused at once with 429
TooManyRequestsException (Reason ConcurrentInvocationLimitExceeded); the scaling rate
(--scale-rate) refuses cold starts beyond it with Reason FunctionInvocationRateLimitExceeded."""
import json
import os
import subprocess
import threading
import time

import botocore.exceptions

import functions
import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
HOLD_S = 10  # how long a busy sandbox is held: ample time to probe while it is busy


def invoke(lam, name, event):
    resp = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = json.loads(resp["Payload"].read())
    if "FunctionError" in resp:
        raise AssertionError("function error from %s: %r" % (name, body))
    return body


class CapacityBase(harness.KilnTestCase):

    def make(self, memory):
        name, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER,
                                       MemorySize=memory, Timeout=30)
        return name

    def admin(self, *args):
        """`kiln ARGS --json` (the operator's CLI) against this server, parsed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
        cmd = [harness.kiln_binary()] + list(args) + ["--json", "--endpoint-url", self.server.endpoint,
                                                      "--data-dir", self.server.data_dir]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def reserved_mb(self):
        return self.admin("status")["Host"]["MemoryReservedMB"]

    def assertThrottled(self, err, reason):
        self.assertEqual(err.response["Error"]["Code"], "TooManyRequestsException", repr(err.response))
        self.assertEqual(err.response["ResponseMetadata"]["HTTPStatusCode"], 429)
        self.assertEqual(err.response.get("Reason"), reason, repr(err.response))


class ReclaimTest(CapacityBase):
    server_kwargs = {"extra_args": ["--sandbox-memory-mb", "256"]}

    def test_memory_pressure_reclaims_the_oldest_idle_sandbox_of_another_function(self):
        a, b, c = self.make(128), self.make(128), self.make(128)
        a1 = invoke(self.lam, a, {"action": "state"})["sandbox"]
        b1 = invoke(self.lam, b, {"action": "state"})["sandbox"]
        # Room for two: C's sandbox needs A's (idle longest) to go.
        invoke(self.lam, c, {"action": "state"})
        self.assertEqual(invoke(self.lam, b, {"action": "state"})["sandbox"], b1,
                         "the more recently used sandbox of B survives")
        a2 = invoke(self.lam, a, {"action": "state"})["sandbox"]
        self.assertNotEqual(a2, a1, "A's idle sandbox was reclaimed, so A starts cold")
        self.assertEqual(invoke(self.lam, b, {"action": "state"})["sandbox"], b1,
                         "C's sandbox, idle longer than B's, made room for A")
        self.assertLessEqual(self.reserved_mb(), 256)
        self.assertServing()

    def test_a_function_needing_all_the_memory_reclaims_every_idle_sandbox(self):
        small = [self.make(128) for _ in range(2)]
        for name in small:
            invoke(self.lam, name, {"action": "state"})
        big = self.make(256)
        self.assertEqual(invoke(self.lam, big, {"action": "echo", "data": 7}), 7)
        for name in small:  # and back again: big's idle sandbox is reclaimed in turn
            invoke(self.lam, name, {"action": "state"})


class RefusalTest(CapacityBase):
    server_kwargs = {"extra_args": ["--sandbox-memory-mb", "256"]}

    def test_busy_sandboxes_are_not_reclaimed_and_the_refusal_is_a_throttle(self):
        small = self.make(128)
        big = self.make(256)  # its sandbox reclaims small's idle one, if there is one
        invoke(self.lam, big, {"action": "state"})
        result = {}

        def hold():
            result["big"] = invoke(self.server.client(), big, {"action": "sleep", "seconds": HOLD_S})

        t = threading.Thread(target=hold)
        t.start()
        deadline = time.monotonic() + 20
        while not any(sb["State"] == "busy" for sb in self.admin("sandboxes", "--function", big)["Sandboxes"]):
            self.assertLess(time.monotonic(), deadline, "big's invoke never became busy")
            time.sleep(0.02)
        # Big's busy sandbox holds all the memory: small is refused at once.
        err = self.assertClientError(lambda: invoke(self.lam, small, {"action": "echo", "data": 1}),
                                     "TooManyRequestsException", status=429)
        self.assertEqual(err.response.get("Reason"), "ConcurrentInvocationLimitExceeded")
        self.assertIn("memory", err.response["Error"]["Message"])
        t.join(30)
        self.assertEqual(result["big"]["slept"], HOLD_S, "the busy sandbox was not disturbed")
        # Once big is idle again it is reclaimed for small.
        self.assertEqual(invoke(self.lam, small, {"action": "echo", "data": 2}), 2)
        self.assertLessEqual(self.reserved_mb(), 256)
        self.assertServing()

    def test_a_function_larger_than_the_host_is_refused(self):
        huge, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER,
                                       MemorySize=512, Timeout=30, wait=False)
        # Kiln could not set it up: State Failed with the reason, as Lambda reports a
        # function it cannot provision.
        deadline = time.monotonic() + 30
        while True:
            cfg = self.lam.get_function_configuration(FunctionName=huge)
            if cfg["State"] != "Pending" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual((cfg["State"], cfg.get("StateReasonCode")), ("Failed", "InsufficientCapacity"), cfg)
        self.assertTrue(cfg.get("StateReason"))
        err = self.assertClientError(lambda: self.lam.invoke(FunctionName=huge, Payload=b"{}"),
                                     "TooManyRequestsException", status=429)
        self.assertEqual(err.response.get("Reason"), "ConcurrentInvocationLimitExceeded")


class ScaleRateTest(CapacityBase):
    server_kwargs = {"extra_args": ["--scale-rate", "1"]}

    def test_cold_starts_beyond_the_scaling_rate_are_throttled(self):
        name = self.make(128)
        count = 4
        lam = self.server.client(max_pool_connections=count)
        results = [None] * count
        start = threading.Barrier(count)

        def one(i):
            start.wait()
            try:
                results[i] = invoke(lam, name, {"action": "sleep", "seconds": 1})
            except botocore.exceptions.ClientError as e:
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        refused = [r for r in results if isinstance(r, botocore.exceptions.ClientError)]
        served = [r for r in results if isinstance(r, dict)]
        # At most one prepared sandbox plus one new one per window of 10 s.
        self.assertGreaterEqual(len(served), 1, results)
        self.assertLessEqual(len(served), 2, results)
        self.assertEqual(len(refused) + len(served), count, results)
        for e in refused:
            self.assertThrottled(e, "FunctionInvocationRateLimitExceeded")
        self.assertServing()


if __name__ == "__main__":
    harness.main()
