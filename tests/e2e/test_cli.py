"""The AWS CLI, v1 (pip awscli) and v2 (/usr/bin/aws), drives Kiln unchanged."""
import base64
import json
import os
import tempfile

import functions
import harness


class CliMixin:
    version = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        harness.cli_command(cls.version)  # skip/fail early if this CLI is missing
        cls.home = tempfile.mkdtemp(prefix="kiln-cli-home-", dir=cls.server.tmp)
        cls.env = harness.clean_cli_env(cls.home)
        cls.env.update({"AWS_ACCESS_KEY_ID": harness.TEST_ACCESS_KEY,
                        "AWS_SECRET_ACCESS_KEY": harness.TEST_SECRET_KEY,
                        "AWS_DEFAULT_REGION": harness.REGION})
        cls.zip_path = os.path.join(cls.home, "function.zip")
        with open(cls.zip_path, "wb") as f:
            f.write(harness.python_zip(functions.PYTHON))

    def aws(self, *args, expect_ok=True, env=None):
        r = harness.run_cli(self.version, ["lambda"] + list(args) +
                            ["--endpoint-url", self.server.endpoint, "--output", "json"],
                            env or self.env)
        if expect_ok:
            self.assertEqual(r.returncode, 0, "aws v%d %s failed:\nstdout: %s\nstderr: %s"
                             % (self.version, " ".join(args), r.stdout, r.stderr))
        return r

    def aws_json(self, *args):
        out = self.aws(*args).stdout
        return json.loads(out) if out.strip() else {}

    def test_full_lifecycle(self):
        name = harness.unique_name("cli%d" % self.version)
        out = self.aws_json("create-function", "--function-name", name, "--runtime", "python3.11",
                            "--role", harness.ROLE, "--handler", "lambda_function.handler",
                            "--zip-file", "fileb://" + self.zip_path, "--timeout", "7",
                            "--environment", "Variables={CLI=yes}")
        self.assertEqual(out["FunctionName"], name)
        self.assertEqual(out["Timeout"], 7)
        harness.wait_active(self.lam, name)

        outfile = os.path.join(self.home, "out-%s.json" % name)
        # v2 reads blobs as base64 unless told otherwise; v1 takes raw (and lacks the flag)
        raw = ["--cli-binary-format", "raw-in-base64-out"] if self.version == 2 else []
        inv = self.aws_json("invoke", "--function-name", name, *raw,
                            "--payload", '{"action":"echo","data":{"a":1}}',
                            "--log-type", "Tail", outfile)
        self.assertEqual(inv["StatusCode"], 200)
        self.assertEqual(inv.get("ExecutedVersion"), "$LATEST")
        self.assertIn("REPORT RequestId", base64.b64decode(inv["LogResult"]).decode())
        with open(outfile) as f:
            self.assertEqual(json.load(f), {"a": 1})

        listed = self.aws_json("list-functions")
        self.assertIn(name, [f["FunctionName"] for f in listed["Functions"]])

        got = self.aws_json("get-function", "--function-name", name)
        self.assertEqual(got["Configuration"]["FunctionName"], name)
        self.assertTrue(got["Code"]["Location"].startswith("http"))

        new_zip = os.path.join(self.home, "v2.zip")
        new_bytes = harness.python_zip("def handler(e, c):\n    return 'v2'\n")
        with open(new_zip, "wb") as f:
            f.write(new_bytes)
        upd = self.aws_json("update-function-code", "--function-name", name,
                            "--zip-file", "fileb://" + new_zip)
        self.assertEqual(upd["CodeSha256"], harness.code_sha256(new_bytes))
        harness.wait_active(self.lam, name)
        cfg = self.aws_json("update-function-configuration", "--function-name", name,
                            "--memory-size", "256", "--description", "from cli")
        self.assertEqual((cfg["MemorySize"], cfg["Description"]), (256, "from cli"))
        harness.wait_active(self.lam, name)
        self.aws_json("invoke", "--function-name", name, *raw, "--payload", "{}", outfile)
        with open(outfile) as f:
            self.assertEqual(json.load(f), "v2")

        self.aws("delete-function", "--function-name", name)
        r = self.aws("get-function", "--function-name", name, expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ResourceNotFoundException", r.stderr)

    def test_error_is_reported_by_name(self):
        r = self.aws("get-function", "--function-name", "does-not-exist", expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ResourceNotFoundException", r.stderr)

    def test_account_settings(self):
        out = self.aws_json("get-account-settings")
        self.assertIn("AccountLimit", out)

    def test_readme_command_line(self):
        """Exactly: AWS_SHARED_CREDENTIALS_FILE=DIR/credentials AWS_PROFILE=kiln
        aws lambda list-functions --endpoint-url http://127.0.0.1:PORT
        (against a server that generated its key, with nothing else configured)."""
        server = harness.KilnServer(keys=None)
        try:
            server.start()
            env = harness.clean_cli_env(tempfile.mkdtemp(dir=server.tmp))
            env["AWS_SHARED_CREDENTIALS_FILE"] = server.credentials_path()
            env["AWS_PROFILE"] = "kiln"
            r = harness.run_cli(self.version, ["lambda", "list-functions", "--endpoint-url",
                                               server.endpoint], env)
            self.assertEqual(r.returncode, 0, "README command failed:\nstdout: %s\nstderr: %s"
                             % (r.stdout, r.stderr))
            self.assertIn("Functions", json.loads(r.stdout))
        finally:
            server.cleanup()


class CliV1Test(CliMixin, harness.KilnTestCase):
    version = 1


class CliV2Test(CliMixin, harness.KilnTestCase):
    version = 2


if __name__ == "__main__":
    harness.main()
