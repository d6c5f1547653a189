"""Bad input of every kind gets Lambda's error, and the server keeps serving."""
import io
import json
import os
import uuid
import zipfile

import botocore.exceptions

import functions
import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
# Model constraint failures: Lambda answers ValidationException; its own checks
# answer InvalidParameterValueException. Either is a 400 botocore parses.
BAD_VALUE = ("ValidationException", "InvalidParameterValueException")
CREATE_PATH = "/2015-03-31/functions"


def zip_with_entries(entries):
    """entries: list of (ZipInfo-or-name, bytes) written verbatim (no sanitising)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for info, data in entries:
            z.writestr(info, data)
    return buf.getvalue()


def symlink_entry(name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info, target.encode()


class ErrorsTest(harness.KilnTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip = harness.python_zip(functions.PYTHON)
        cls.loose = cls.server.client(validate=False)  # skips botocore's own checks

    def tearDown(self):
        self.assertServing()

    def create_raw(self, body, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return harness.signed_request(self.server, "POST", CREATE_PATH, body, h)

    def assertErrorResponse(self, r, status, codes):
        """A raw response is a JSON Lambda error: status, x-amzn-ErrorType, message."""
        if isinstance(codes, str):
            codes = (codes,)
        self.assertEqual(r.status, status, repr(r))
        etype = (r.header("x-amzn-ErrorType") or "").split(":")[0]
        body = r.json()  # raises if the body is not JSON (e.g. an HTML page)
        code = etype or body.get("__type") or body.get("Type")
        self.assertIn(code, codes, repr(r))
        self.assertTrue(body.get("message") or body.get("Message"), repr(r))

    def assertNoFunction(self, name):
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name),
                               "ResourceNotFoundException", 404)

    # ------------------------------------------------------------ request bodies

    def test_malformed_json_body(self):
        for body in (b"{not json", b"[1,2", b"\xff\xfe\x00", b'{"FunctionName": }'):
            r = self.create_raw(body)
            self.assertErrorResponse(r, 400, ("InvalidRequestContentException",
                                              "SerializationException",
                                              "InvalidParameterValueException",
                                              "ValidationException"))

    def test_body_of_wrong_shape(self):
        for body in ({"FunctionName": 5, "Runtime": PY}, ["list"], "string",
                     {"FunctionName": "x", "MemorySize": "lots"}):
            r = self.create_raw(json.dumps(body))
            self.assertEqual(r.status // 100, 4, repr(r))
            r.json()

    def test_missing_required_fields(self):
        name = harness.unique_name("missing")
        base = {"FunctionName": name, "Runtime": PY, "Role": harness.ROLE,
                "Handler": HANDLER, "Code": {"ZipFile": "UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="}}
        for field in ("FunctionName", "Role", "Code"):
            body = {k: v for k, v in base.items() if k != field}
            r = self.create_raw(json.dumps(body))
            self.assertErrorResponse(r, 400, BAD_VALUE)
        self.assertNoFunction(name)

    def test_invoke_payload_not_json(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        self.assertClientError(lambda: self.lam.invoke(FunctionName=name, Payload=b"{oops"),
                               "InvalidRequestContentException", 400)

    def test_oversize_create_body(self):
        # Lambda refuses CreateFunction bodies over ~70 MB (ZipFile 50 MB, base64-encoded).
        zip_bytes = os.urandom(53 * 1024 * 1024)
        name = harness.unique_name("huge")
        self.assertClientError(lambda: self.lam.create_function(
            FunctionName=name, Runtime=PY, Role=harness.ROLE, Handler=HANDLER,
            Code={"ZipFile": zip_bytes}),
            ("RequestEntityTooLargeException", "RequestTooLargeException",
             "InvalidParameterValueException"))
        self.assertNoFunction(name)

    # ------------------------------------------------------------ names and values

    def test_invalid_function_names(self):
        for bad in ("a" * 65, "bad name", "bad/name", "bad!", "naïve"):
            self.assertClientError(lambda: self.loose.create_function(
                FunctionName=bad, Runtime=PY, Role=harness.ROLE, Handler=HANDLER,
                Code={"ZipFile": self.zip}), BAD_VALUE, 400)
        for bad in ("bad name", "x" * 200):
            self.assertClientError(lambda: self.loose.get_function(FunctionName=bad),
                                   BAD_VALUE + ("ResourceNotFoundException",))

    def test_values_out_of_range(self):
        cases = [{"MemorySize": 127}, {"MemorySize": 10241}, {"MemorySize": 0},
                 {"Timeout": 0}, {"Timeout": 901}, {"Timeout": -1},
                 {"EphemeralStorage": {"Size": 511}}, {"EphemeralStorage": {"Size": 10241}},
                 {"Runtime": "cobol85"}, {"Architectures": ["arm64", "x86_64"]},
                 {"Architectures": ["sparc"]}, {"Role": "not-an-arn"},
                 {"Description": "d" * 257}, {"Handler": "h" * 129},
                 {"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}},
                 {"Environment": {"Variables": {"1bad key": "v"}}},
                 {"PackageType": "Image"}]
        for case in cases:
            name = harness.unique_name("range")
            kw = {"FunctionName": name, "Runtime": PY, "Role": harness.ROLE,
                  "Handler": HANDLER, "Code": {"ZipFile": self.zip}}
            kw.update(case)
            with self.subTest(case=case):
                self.assertClientError(lambda: self.loose.create_function(**kw), BAD_VALUE, 400)
                self.assertNoFunction(name)

    def test_update_configuration_out_of_range(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        for case in ({"MemorySize": 64}, {"Timeout": 1000}, {"Runtime": "cobol85"}):
            with self.subTest(case=case):
                self.assertClientError(lambda: self.loose.update_function_configuration(
                    FunctionName=name, **case), BAD_VALUE, 400)
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual((cfg["MemorySize"], cfg["Timeout"], cfg["Runtime"]), (128, 3, PY))

    def test_bad_list_and_invoke_parameters(self):
        for kw in ({"MaxItems": 0}, {"MaxItems": 10001}, {"Marker": "not-a-marker!!"}):
            with self.subTest(kw=kw):
                self.assertClientError(lambda: self.loose.list_functions(**kw), BAD_VALUE, 400)
        name, _ = self.create_function(self.zip, PY, HANDLER)
        for kw in ({"InvocationType": "Bogus"}, {"LogType": "Bogus"}):
            with self.subTest(kw=kw):
                self.assertClientError(lambda: self.loose.invoke(FunctionName=name, Payload=b"{}", **kw),
                                       BAD_VALUE, 400)

    # ------------------------------------------------------------ bad zips

    def assertBadZip(self, zip_bytes, sentinel=None):
        name = harness.unique_name("badzip")
        self.assertClientError(lambda: self.lam.create_function(
            FunctionName=name, Runtime=PY, Role=harness.ROLE, Handler=HANDLER,
            Code={"ZipFile": zip_bytes}), "InvalidParameterValueException", 400)
        self.assertNoFunction(name)
        good, _ = self.create_function(self.zip, PY, HANDLER)
        self.assertClientError(lambda: self.lam.update_function_code(
            FunctionName=good, ZipFile=zip_bytes), "InvalidParameterValueException", 400)
        cfg = self.lam.get_function_configuration(FunctionName=good)
        self.assertEqual(cfg["CodeSha256"], harness.code_sha256(self.zip), "bad update changed code")
        if sentinel:
            self.assertFalse(os.path.lexists(sentinel), "zip entry written outside: " + sentinel)

    def test_not_a_zip(self):
        self.assertBadZip(b"this is not a zip file at all")
        self.assertBadZip(self.zip[: len(self.zip) // 2])  # truncated

    def test_empty_zip_file_field(self):
        name = harness.unique_name("empty")
        self.assertClientError(lambda: self.loose.create_function(
            FunctionName=name, Runtime=PY, Role=harness.ROLE, Handler=HANDLER,
            Code={"ZipFile": b""}), BAD_VALUE, 400)

    def test_dotdot_entry(self):
        evil = "kiln-e2e-dotdot-%s" % uuid.uuid4().hex
        self.assertBadZip(zip_with_entries([("ok.py", b"x=1"), ("../" * 12 + "tmp/" + evil, b"pwn")]),
                          "/tmp/" + evil)
        self.assertBadZip(zip_with_entries([("a/../../" + evil, b"pwn")]))

    def test_absolute_path_entry(self):
        evil = "/tmp/kiln-e2e-abs-%s" % uuid.uuid4().hex
        info = zipfile.ZipInfo("placeholder")
        info.filename = evil  # ZipInfo strips leading "/" from the constructor argument
        self.assertBadZip(zip_with_entries([(info, b"pwn")]), evil)

    def test_symlink_out_of_task_root(self):
        self.assertBadZip(zip_with_entries([symlink_entry("passwd", "/etc/passwd")]))
        self.assertBadZip(zip_with_entries([symlink_entry("up", "../../../../etc")]))
        evil = "kiln-e2e-link-%s" % uuid.uuid4().hex
        self.assertBadZip(zip_with_entries([symlink_entry("t", "/tmp"), ("t/" + evil, b"pwn")]),
                          "/tmp/" + evil)

    def test_symlink_inside_task_root_is_fine(self):
        z = zip_with_entries([("lambda_function.py", functions.PYTHON.encode()),
                              symlink_entry("alias.py", "lambda_function.py")])
        name, _ = self.create_function(z, PY, "alias.handler")
        resp = self.lam.invoke(FunctionName=name, Payload=b'{"action":"echo","data":"via-link"}')
        self.assertEqual(json.loads(resp["Payload"].read()), "via-link")

    def test_unzipped_over_250mb(self):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            info = zipfile.ZipInfo("bomb.bin")
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w", force_zip64=True) as f:
                chunk = b"\0" * (1024 * 1024)
                for _ in range(251):
                    f.write(chunk)
        self.assertLess(len(buf.getvalue()), 2 * 1024 * 1024)
        self.assertBadZip(buf.getvalue())

    # ------------------------------------------------------------ unknown things

    def test_unknown_function(self):
        ghost = harness.unique_name("ghost")
        calls = [lambda: self.lam.get_function(FunctionName=ghost),
                 lambda: self.lam.get_function_configuration(FunctionName=ghost),
                 lambda: self.lam.invoke(FunctionName=ghost, Payload=b"{}"),
                 lambda: self.lam.delete_function(FunctionName=ghost),
                 lambda: self.lam.update_function_code(FunctionName=ghost, ZipFile=self.zip),
                 lambda: self.lam.update_function_configuration(FunctionName=ghost, Timeout=5)]
        for call in calls:
            self.assertClientError(call, "ResourceNotFoundException", 404, msg_contains=ghost)

    def test_unknown_qualifier(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        self.assertClientError(lambda: self.lam.invoke(FunctionName=name, Qualifier="nosuch",
                                                       Payload=b"{}"),
                               "ResourceNotFoundException", 404)

    def test_unimplemented_operations_are_named(self):
        calls = {"ListLayers": lambda: self.lam.list_layers(),
                 "GetFunctionUrlConfig": lambda: self.lam.get_function_url_config(FunctionName="x"),
                 "ListCodeSigningConfigs": lambda: self.lam.list_code_signing_configs(),
                 "GetFunctionCodeSigningConfig":
                     lambda: self.lam.get_function_code_signing_config(FunctionName="x")}
        for op, call in calls.items():
            with self.subTest(op=op):
                try:
                    call()
                except botocore.exceptions.ClientError as e:
                    err = e.response["Error"]
                    self.assertIn(op, err.get("Code", "") + " " + err.get("Message", ""),
                                  "error does not name %s: %r" % (op, e.response))
                    self.assertLess(e.response["ResponseMetadata"]["HTTPStatusCode"], 600)
                else:
                    pass  # implemented: fine

    def test_unknown_path_and_wrong_method(self):
        for method, path in (("GET", "/nope"), ("GET", "/2015-03-31/nothing/here"),
                             ("DELETE", "/2015-03-31/functions"), ("PATCH", CREATE_PATH),
                             ("PUT", "/2016-08-19/account-settings")):
            with self.subTest(method=method, path=path):
                r = harness.signed_request(self.server, method, path)
                self.assertIn(r.status // 100, (4,), repr(r))
                self.assertFalse(r.body.lstrip().startswith(b"<"), "HTML error page: %r" % r)
                if r.body:
                    r.json()

    def test_garbage_on_the_socket(self):
        import socket
        for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,  # TLS hello
                     b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=5) as s:
                s.sendall(junk)
                try:
                    s.recv(4096)
                except OSError:
                    pass
        self.assertServing()


if __name__ == "__main__":
    harness.main()
