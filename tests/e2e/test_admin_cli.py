"""The operator's CLI (`kiln status|sandboxes|dead-letters|credentials`) against a real
`kiln serve`: tables for people, JSON with --json, the admin API's refusals."""
import json
import os
import subprocess
import unittest

import botocore.exceptions

import functions
import harness


class AdminCliTest(harness.KilnTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fn = harness.create_function(cls.lam, harness.unique_name("admin"), harness.python_zip(functions.PYTHON),
                                         "python3.11", "lambda_function.handler", MemorySize=256)["FunctionName"]
        cls.lam.invoke(FunctionName=cls.fn, Payload=b'{"action": "echo", "data": 1}')["Payload"].read()

    def kiln(self, *args, env_keys=False, check=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
        if env_keys:
            env["KILN_ACCESS_KEY_ID"], env["KILN_SECRET_ACCESS_KEY"] = self.server.keys
        cmd = [harness.kiln_binary()] + list(args) + ["--endpoint-url", self.server.endpoint,
                                                      "--data-dir", self.server.data_dir]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
        if check:
            self.assertEqual(r.returncode, 0, "%s\nstdout: %s\nstderr: %s" % (cmd, r.stdout, r.stderr))
        return r

    def test_status_table_and_json(self):
        r = self.kiln("status")
        self.assertIn("Sandboxes:", r.stdout)
        self.assertIn(self.fn, r.stdout)
        self.assertRegex(r.stdout, r"ACCOUNT\s+FUNCTION\s+VERSION\s+IDLE\s+BUSY")
        j = json.loads(self.kiln("status", "--json", env_keys=True).stdout)
        self.assertGreaterEqual(j["Host"]["MemoryReservedMB"], 256)
        self.assertEqual([f["Idle"] for f in j["Functions"] if f["FunctionName"] == self.fn], [1])

    def test_sandboxes_lists_age_state_memory(self):
        j = json.loads(self.kiln("sandboxes", "--json", "--function", self.fn).stdout)
        self.assertEqual(len(j["Sandboxes"]), 1)
        s = j["Sandboxes"][0]
        self.assertEqual((s["FunctionName"], s["State"], s["MemorySizeMB"]), (self.fn, "idle", 256))
        self.assertGreaterEqual(s["AgeSeconds"], 0)
        self.assertGreater(s["MaxMemoryUsedMB"], 0)
        table = self.kiln("sandboxes").stdout
        self.assertIn(s["Id"], table)
        self.assertIn("MAX_USED_MB", table)

    def test_credentials_create_use_and_revoke(self):
        created = json.loads(self.kiln("credentials", "create", "--json").stdout)
        self.assertRegex(created["AccountId"], r"^\d{12}$")
        keys = (created["AccessKeyId"], created["SecretAccessKey"])
        lam = self.server.client(keys=keys)
        self.assertEqual(lam.list_functions()["Functions"], [])  # a new, empty account
        second = json.loads(self.kiln("credentials", "create", "--account", created["AccountId"], "--json").stdout)
        self.assertEqual(second["AccountId"], created["AccountId"])
        listed = json.loads(self.kiln("credentials", "list", "--account", created["AccountId"], "--json").stdout)
        self.assertEqual(sorted(k["AccessKeyId"] for k in listed["AccessKeys"]),
                         sorted([created["AccessKeyId"], second["AccessKeyId"]]))
        self.assertNotIn("Secret", json.dumps(listed))
        self.assertIn("Revoked", self.kiln("credentials", "revoke", created["AccessKeyId"]).stdout)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            lam.list_functions()
        self.assertEqual(cm.exception.response["Error"]["Code"], "UnrecognizedClientException")
        # Non-root accounts may not use the admin API.
        env = dict(os.environ, KILN_ACCESS_KEY_ID=second["AccessKeyId"], KILN_SECRET_ACCESS_KEY=second["SecretAccessKey"])
        r = subprocess.run([harness.kiln_binary(), "status", "--endpoint-url", self.server.endpoint], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("AccessDeniedException", r.stderr)

    def test_credentials_refusals(self):
        r = self.kiln("credentials", "create", "--account", "999999999999", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ResourceNotFoundException", r.stderr)
        r = self.kiln("credentials", "revoke", "AKIANOSUCHKEY0000000", check=False)
        self.assertIn("ResourceNotFoundException", r.stderr)
        r = self.kiln("credentials", "revoke", self.server.keys[0], check=False)
        self.assertEqual(r.returncode, 1)  # not the key that signs the request
        self.assertServing()

    def test_dead_letters_commands_reach_the_admin_api(self):
        r = self.kiln("dead-letters", "--json", check=False)
        if r.returncode != 0 and "UnknownOperationException" in r.stderr:
            self.skipTest("ListDeadLetters is not registered by this build (async component)")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("DeadLetters", json.loads(r.stdout))
        self.assertIn("CONDITION", self.kiln("dead-letters", "list").stdout)

    def test_usage_errors_and_unreachable_server(self):
        r = subprocess.run([harness.kiln_binary(), "credentials", "frobnicate"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage:", r.stderr)
        r = subprocess.run([harness.kiln_binary(), "status", "--endpoint-url", "http://127.0.0.1:1",
                            "--data-dir", self.server.data_dir], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("ConnectionError", r.stderr)
        r = subprocess.run([harness.kiln_binary(), "status", "--data-dir", "/nonexistent"],
                           capture_output=True, text=True, env={"PATH": "/usr/bin"}, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("MissingCredentials", r.stderr)


if __name__ == "__main__":
    harness.main()
