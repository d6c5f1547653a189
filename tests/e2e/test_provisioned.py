"""Provisioned concurrency with boto3: Put/Get/List/DeleteProvisionedConcurrencyConfig on
a published version or an alias (never $LATEST); Status goes IN_PROGRESS -> READY only
once the sandboxes have initialized, so invokes right after READY and a burst of N show
no Init Duration; the idle reaper leaves them alone; an init failure is FAILED with a
StatusReason; delete releases them (the next invoke is cold again); configurations
survive a restart."""
import base64
import json
import threading
import time

import botocore.exceptions

import functions
import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
N = 3


def log_of(resp):
    return base64.b64decode(resp["LogResult"]).decode("utf-8", "replace")


class ProvisionedConcurrencyTest(harness.KilnTestCase):
    server_kwargs = {"idle_seconds": 2}  # short, to prove the reaper skips provisioned sandboxes

    def setUp(self):
        self.__class__.burst_lam = self.server.client(max_pool_connections=20)

    def make(self, source=functions.PYTHON):
        name, _ = self.create_function(harness.python_zip(source), PY, HANDLER, Timeout=30)
        version = self.lam.publish_version(FunctionName=name)["Version"]
        return name, version

    def wait_status(self, name, qualifier, want, timeout=60):
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            cfg = self.lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
            if not seen or seen[-1] != cfg["Status"]:
                seen.append(cfg["Status"])
            if cfg["Status"] == want:
                return cfg, seen
            if cfg["Status"] == "FAILED":
                self.fail("provisioning failed: %r" % cfg)
            time.sleep(0.1)
        self.fail("status never became %s (seen %r)" % (want, seen))

    def invoke_tail(self, name, qualifier, event, client=None):
        resp = (client or self.lam).invoke(FunctionName=name, Qualifier=qualifier, LogType="Tail",
                                           Payload=json.dumps(event).encode())
        payload = json.loads(resp["Payload"].read())
        self.assertNotIn("FunctionError", resp, payload)
        return payload, log_of(resp)

    def test_ready_only_after_sandboxes_initialized_and_burst_is_warm(self):
        name, version = self.make()
        put = self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                          ProvisionedConcurrentExecutions=N)
        self.assertEqual(put["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(put["Status"], "IN_PROGRESS")
        self.assertEqual(put["RequestedProvisionedConcurrentExecutions"], N)
        self.assertIn("LastModified", put)
        cfg, _ = self.wait_status(name, version, "READY")
        self.assertEqual(cfg["AllocatedProvisionedConcurrentExecutions"], N)
        self.assertEqual(cfg["AvailableProvisionedConcurrentExecutions"], N)
        # Right after READY: no cold start.
        _, log = self.invoke_tail(name, version, {"action": "state"})
        self.assertIn("REPORT RequestId", log)
        self.assertNotIn("Init Duration", log, "first invoke after READY was a cold start")
        # Past the idle timeout, the provisioned sandboxes are still there: a function
        # made after them, idle for less time, is reaped first.
        control, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER)
        harness.wait_until(lambda: not harness.sandboxes(self.server, control), "control sandbox reaped")
        # A burst of N concurrent invokes: every one warm, each in its own sandbox.
        results = [None] * N
        start = threading.Barrier(N)

        def one(i):
            start.wait()
            results[i] = self.invoke_tail(name, version, {"action": "sleep", "seconds": 1.0}, self.burst_lam)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(N)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for payload, log in results:
            self.assertNotIn("Init Duration", log, "a burst invoke got a cold start")
        self.assertEqual(len({p["sandbox"] for p, _ in results}), N)

    def test_latest_is_refused(self):
        name, _ = self.make()
        self.assertClientError(
            lambda: self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST",
                                                                ProvisionedConcurrentExecutions=1),
            "InvalidParameterValueException", 400)
        self.assertClientError(
            lambda: self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="42",
                                                                ProvisionedConcurrentExecutions=1),
            "ResourceNotFoundException", 404)
        self.assertClientError(
            lambda: self.lam.put_provisioned_concurrency_config(FunctionName="no-such-fn", Qualifier="1",
                                                                ProvisionedConcurrentExecutions=1),
            "ResourceNotFoundException", 404)
        # boto3 validates >= 1 itself; a raw 0 is refused by the server as well.
        resp = harness.signed_request(self.server, "PUT",
                                      "/2019-09-30/functions/%s/provisioned-concurrency?Qualifier=1" % name,
                                      json.dumps({"ProvisionedConcurrentExecutions": 0}).encode())
        self.assertEqual(resp.status, 400, resp)

    def test_alias_and_list_and_delete_releases(self):
        name, version = self.make()
        self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
        self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                                    ProvisionedConcurrentExecutions=1)
        self.wait_status(name, "live", "READY")
        listed = self.lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
        self.assertEqual(len(listed), 1)
        self.assertTrue(listed[0]["FunctionArn"].endswith(":function:%s:live" % name), listed)
        self.assertEqual(listed[0]["Status"], "READY")
        _, log = self.invoke_tail(name, "live", {"action": "state"})
        self.assertNotIn("Init Duration", log)

        self.lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
        self.assertClientError(
            lambda: self.lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live"),
            "ProvisionedConcurrencyConfigNotFoundException", 404)
        self.assertEqual(
            self.lam.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"], [])
        # Released: once past the idle timeout, the next invoke is cold again.
        harness.wait_until(lambda: not harness.sandboxes(self.server, name), "released sandboxes reaped")
        _, log = self.invoke_tail(name, "live", {"action": "state"})
        self.assertIn("Init Duration", log, "the provisioned sandbox outlived its configuration")

    def test_deleting_the_function_deletes_its_configurations(self):
        name, version = self.make()
        self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                    ProvisionedConcurrentExecutions=1)
        self.wait_status(name, version, "READY")
        self.lam.delete_function(FunctionName=name)
        # A new function of the same name starts with none (and a restart restores none).
        name2, version2 = self.make_named(name)
        self.assertEqual(version2, version)
        self.assertEqual(
            self.lam.list_provisioned_concurrency_configs(FunctionName=name2)["ProvisionedConcurrencyConfigs"], [])
        self.server.restart()
        self.__class__.lam = self.server.client()
        self.assertEqual(
            self.lam.list_provisioned_concurrency_configs(FunctionName=name2)["ProvisionedConcurrencyConfigs"], [])

    def make_named(self, name):
        self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER, name=name, Timeout=30)
        return name, self.lam.publish_version(FunctionName=name)["Version"]

    def test_init_failure_is_failed_with_a_reason(self):
        # Initializes as $LATEST (so the version can be published), fails as a version.
        name, version = self.make("import os\nif os.environ['AWS_LAMBDA_FUNCTION_VERSION'] != '$LATEST':\n"
                                  "    raise Exception('init boom')\n" + functions.PYTHON)
        self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                    ProvisionedConcurrentExecutions=1)
        deadline = time.time() + 60
        while time.time() < deadline:
            cfg = self.lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
            if cfg["Status"] != "IN_PROGRESS":
                break
            time.sleep(0.1)
        self.assertEqual(cfg["Status"], "FAILED", cfg)
        self.assertIn("init boom", cfg.get("StatusReason", ""), cfg)

    def test_configuration_survives_a_restart(self):
        name, version = self.make()
        self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version,
                                                    ProvisionedConcurrentExecutions=1)
        self.wait_status(name, version, "READY")
        self.server.restart()
        self.__class__.lam = self.server.client()
        cfg, _ = self.wait_status(name, version, "READY")
        self.assertEqual(cfg["RequestedProvisionedConcurrentExecutions"], 1)
        _, log = self.invoke_tail(name, version, {"action": "state"})
        self.assertNotIn("Init Duration", log, "provisioned sandboxes were not recreated after the restart")


if __name__ == "__main__":
    harness.main()
