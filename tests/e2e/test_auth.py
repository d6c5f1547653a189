"""SigV4 authentication as AWS does it, and the generated credentials file."""
import configparser
import os
import re
import stat
import time

import boto3
import botocore
import botocore.config
import botocore.exceptions

import harness

LIST = "/2015-03-31/functions"
AUTH_CODES = ("UnrecognizedClientException", "InvalidSignatureException",
              "IncompleteSignatureException", "MissingAuthenticationTokenException")


class SignatureTest(harness.KilnTestCase):

    def assertRefused(self, r, codes):
        if isinstance(codes, str):
            codes = (codes,)
        self.assertEqual(r.status, 403, repr(r))
        etype = (r.header("x-amzn-ErrorType") or "").split(":")[0]
        body = r.json()
        code = etype or body.get("__type") or body.get("Type")
        self.assertIn(code, codes, repr(r))

    def test_signed_request_accepted(self):
        r = harness.signed_request(self.server, "GET", LIST)
        self.assertEqual(r.status, 200, repr(r))
        self.assertIn("Functions", r.json())
        self.assertTrue(r.header("x-amzn-RequestId"), repr(r))

    def test_unsigned_request(self):
        r = harness.raw_request(self.server, "GET", LIST)
        self.assertRefused(r, "MissingAuthenticationTokenException")
        client = self.server.client(signature_version=botocore.UNSIGNED)
        self.assertClientError(client.list_functions, "MissingAuthenticationTokenException", 403)

    def test_wrong_secret(self):
        client = self.server.client(keys=(harness.TEST_ACCESS_KEY, "wrong" + harness.TEST_SECRET_KEY))
        self.assertClientError(client.list_functions, "InvalidSignatureException", 403)
        self.assertClientError(lambda: client.invoke(FunctionName="x", Payload=b"{}"),
                               "InvalidSignatureException", 403)

    def test_unknown_key(self):
        client = self.server.client(keys=("AKIAUNKNOWNKEY000000", harness.TEST_SECRET_KEY))
        self.assertClientError(client.list_functions, "UnrecognizedClientException", 403,
                               msg_contains="security token included in the request is invalid")

    def test_wrong_region(self):
        client = self.server.client(region="eu-west-1")
        self.assertClientError(client.list_functions,
                               ("InvalidSignatureException", "UnrecognizedClientException"), 403)

    def test_wrong_service(self):
        r = harness.signed_request(self.server, "GET", LIST, service="s3")
        self.assertRefused(r, AUTH_CODES)

    def test_expired_signature(self):
        r = harness.signed_request(self.server, "GET", LIST, date=time.time() - 20 * 60)
        self.assertRefused(r, "InvalidSignatureException")
        self.assertIn("Signature expired", r.body.decode(), repr(r))
        r = harness.signed_request(self.server, "GET", LIST, date=time.time() + 20 * 60)
        self.assertRefused(r, "InvalidSignatureException")

    def test_tampered_body_header_and_query(self):
        body = b'{"FunctionName": "t"}'
        h = harness.sign(self.server, "POST", LIST, body, {"Content-Type": "application/json"})
        r = harness.raw_request(self.server, "POST", LIST, body.replace(b"t", b"u"), h)
        self.assertRefused(r, "InvalidSignatureException")
        h = harness.sign(self.server, "GET", LIST + "?MaxItems=1")
        r = harness.raw_request(self.server, "GET", LIST + "?MaxItems=2", b"", h)
        self.assertRefused(r, "InvalidSignatureException")
        h = harness.sign(self.server, "GET", LIST)
        h["X-Amz-Date"] = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 60))
        r = harness.raw_request(self.server, "GET", LIST, b"", h)
        self.assertRefused(r, "InvalidSignatureException")

    def test_malformed_authorization_headers(self):
        good = harness.sign(self.server, "GET", LIST)
        auth = good["Authorization"]
        bad_values = ["AWS4-HMAC-SHA256", "Bearer abc", "AWS4-HMAC-SHA256 Credential=x",
                      auth.replace("SignedHeaders=", "SignedHeaderz="),
                      auth.replace("Signature=", "Signature=zz"),
                      re.sub(r"Credential=[^,]+", "Credential=%s/2020/us-east-1/lambda"
                             % harness.TEST_ACCESS_KEY, auth),
                      auth[: len(auth) // 2]]
        for value in bad_values:
            with self.subTest(value=value):
                h = dict(good)
                h["Authorization"] = value
                r = harness.raw_request(self.server, "GET", LIST, b"", h)
                self.assertEqual(r.status // 100, 4, repr(r))
                self.assertIn(r.status, (400, 403), repr(r))
                self.assertNotEqual(r.status, 200)
        h = dict(good)
        del h["X-Amz-Date"]
        r = harness.raw_request(self.server, "GET", LIST, b"", h)
        self.assertIn(r.status, (400, 403), repr(r))
        self.assertServing()

    def test_refused_requests_change_nothing(self):
        name = harness.unique_name("unauth")
        client = self.server.client(keys=(harness.TEST_ACCESS_KEY, "wrong-secret"))
        self.assertClientError(lambda: client.create_function(
            FunctionName=name, Runtime="python3.11", Role=harness.ROLE,
            Handler="a.b", Code={"ZipFile": harness.python_zip("x=1")}),
            "InvalidSignatureException", 403)
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name),
                               "ResourceNotFoundException", 404)


class GeneratedCredentialsTest(harness.KilnTestCase):
    server_kwargs = {"keys": None}

    def test_credentials_file_mode_and_profile(self):
        path = self.server.credentials_path()
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, oct(st.st_mode))
        cp = configparser.ConfigParser()
        cp.read(path)
        self.assertIn("kiln", cp.sections())
        akid, secret = cp["kiln"]["aws_access_key_id"], cp["kiln"]["aws_secret_access_key"]
        self.assertRegex(akid, r"^[A-Z0-9]{16,128}$")
        self.assertGreaterEqual(len(secret), 30)

    def test_profile_works_with_boto3(self):
        # botocore reads the credentials file named in the environment.
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = self.server.credentials_path()
        try:
            session = boto3.session.Session(profile_name="kiln", region_name=harness.REGION)
            client = session.client("lambda", endpoint_url=self.server.endpoint,
                                    config=botocore.config.Config(retries={"total_max_attempts": 1}))
            self.assertIn("Functions", client.list_functions())
        finally:
            del os.environ["AWS_SHARED_CREDENTIALS_FILE"]

    def test_key_and_account_stable_across_restart(self):
        keys = self.server.file_keys()
        name, resp = self.create_function(harness.python_zip("def h(e, c):\n    return 1\n"),
                                          "python3.11", "lambda_function.h")
        account = harness.arn_account(resp["FunctionArn"])
        self.server.restart()
        self.assertEqual(self.server.file_keys(), keys, "generated key changed on restart")
        lam = self.server.client()
        cfg = lam.get_function_configuration(FunctionName=name)
        self.assertEqual(harness.arn_account(cfg["FunctionArn"]), account)
        name2 = harness.unique_name("after")
        resp2 = harness.create_function(lam, name2, harness.python_zip("x=1"), "python3.11", "a.b",
                                        wait=False)
        self.assertEqual(harness.arn_account(resp2["FunctionArn"]), account)
        self.__class__.lam = lam


class EnvironmentKeyTest(harness.KilnTestCase):
    """With KILN_ACCESS_KEY_ID/SECRET set, that key is the root key."""

    def test_env_key_is_accepted_and_others_refused(self):
        self.assertIn("Functions", self.lam.list_functions())
        other = self.server.client(keys=("AKIAOTHERKEY00000000", "x" * 40))
        self.assertClientError(other.list_functions, "UnrecognizedClientException", 403)


if __name__ == "__main__":
    harness.main()
