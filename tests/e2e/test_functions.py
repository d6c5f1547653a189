"""Function CRUD through boto3: create, get, list (paginated), update, delete, ARN forms."""
import json
import re
import urllib.request

import functions
import harness
from harness import code_sha256

PY = "python3.11"
HANDLER = "lambda_function.handler"


class FunctionCrudTest(harness.KilnTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip = harness.python_zip(functions.PYTHON)

    def invoke(self, name, event):
        resp = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
        self.assertNotIn("FunctionError", resp)
        return json.loads(resp["Payload"].read())

    def test_create_returns_full_configuration(self):
        name = harness.unique_name("full")
        resp = self.lam.create_function(
            FunctionName=name, Runtime=PY, Role=harness.ROLE, Handler=HANDLER,
            Code={"ZipFile": self.zip}, Description="a description", Timeout=42,
            MemorySize=256, Environment={"Variables": {"AA": "1", "BB": "two"}},
            EphemeralStorage={"Size": 1024}, Architectures=["x86_64"],
            Tags={"team": "kiln", "env": "e2e"}, PackageType="Zip")
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(resp["FunctionName"], name)
        self.assertRegex(resp["FunctionArn"],
                         r"^arn:aws:lambda:us-east-1:\d{12}:function:%s$" % re.escape(name))
        expect = {"Runtime": PY, "Role": harness.ROLE, "Handler": HANDLER,
                  "Description": "a description", "Timeout": 42, "MemorySize": 256,
                  "CodeSize": len(self.zip), "CodeSha256": code_sha256(self.zip),
                  "Version": "$LATEST", "PackageType": "Zip", "Architectures": ["x86_64"],
                  "EphemeralStorage": {"Size": 1024},
                  "Environment": {"Variables": {"AA": "1", "BB": "two"}}}
        for k, v in expect.items():
            self.assertEqual(resp.get(k), v, k)
        self.assertRegex(resp["LastModified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
        self.assertIn(resp.get("State"), ("Pending", "Active"))
        cfg = harness.wait_active(self.lam, name)
        for k, v in expect.items():
            self.assertEqual(cfg.get(k), v, k)
        self.assertEqual(cfg["FunctionArn"], resp["FunctionArn"])
        got = self.lam.get_function(FunctionName=name)
        self.assertEqual(got["Configuration"]["CodeSha256"], code_sha256(self.zip))
        self.assertEqual(got.get("Tags"), {"team": "kiln", "env": "e2e"})
        self.assertEqual(got["Code"].get("RepositoryType"), "S3")

    def test_defaults(self):
        name, resp = self.create_function(self.zip, PY, HANDLER)
        self.assertEqual(resp["MemorySize"], 128)
        self.assertEqual(resp["Timeout"], 3)
        self.assertEqual(resp.get("EphemeralStorage"), {"Size": 512})
        self.assertEqual(resp.get("Architectures"), ["x86_64"])
        self.assertEqual(resp.get("PackageType"), "Zip")
        self.assertEqual(resp.get("Description", ""), "")

    def test_code_location_downloads_the_zip_without_signing(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        loc = self.lam.get_function(FunctionName=name)["Code"]["Location"]
        self.assertTrue(loc.startswith("http"), loc)
        with urllib.request.urlopen(loc, timeout=10) as r:  # plain GET, no SigV4
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), self.zip)

    def test_create_twice_is_conflict(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        self.assertClientError(lambda: harness.create_function(self.lam, name, self.zip, PY, HANDLER),
                               "ResourceConflictException", 409)

    def test_list_functions_paginates_with_marker(self):
        names = set()
        for i in range(7):
            n, _ = self.create_function(self.zip, PY, HANDLER, name=harness.unique_name("page%d" % i),
                                        wait=False)
            names.add(n)
        seen, marker, pages = [], None, 0
        while True:
            kw = {"MaxItems": 3}
            if marker:
                kw["Marker"] = marker
            page = self.lam.list_functions(**kw)
            self.assertLessEqual(len(page["Functions"]), 3)
            seen += [f["FunctionName"] for f in page["Functions"]]
            pages += 1
            marker = page.get("NextMarker")
            if not marker:
                break
            self.assertLess(pages, 100, "pagination does not end")
        self.assertEqual(len(seen), len(set(seen)), "a function listed twice: %r" % seen)
        self.assertTrue(names <= set(seen), "missing: %r" % (names - set(seen)))
        self.assertGreaterEqual(pages, 3)
        # boto3's paginator agrees
        paginated = []
        for page in self.lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}):
            paginated += [f["FunctionName"] for f in page["Functions"]]
        self.assertEqual(sorted(paginated), sorted(seen))
        # listed entries carry their configuration
        page = self.lam.list_functions()
        entry = next(f for f in page["Functions"] if f["FunctionName"] in names)
        self.assertEqual(entry["Runtime"], PY)
        self.assertEqual(entry["CodeSha256"], code_sha256(self.zip))

    def test_update_function_code_serves_new_code(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        self.assertEqual(self.invoke(name, {"action": "echo", "data": "v1"}), "v1")  # warm now
        new_zip = harness.python_zip("def handler(e, c):\n    return 'v2'\n")
        resp = self.lam.update_function_code(FunctionName=name, ZipFile=new_zip)
        self.assertEqual(resp["CodeSha256"], code_sha256(new_zip))
        self.assertEqual(resp["CodeSize"], len(new_zip))
        harness.wait_active(self.lam, name)
        self.assertEqual(self.invoke(name, {"action": "echo", "data": "v1"}), "v2")
        loc = self.lam.get_function(FunctionName=name)["Code"]["Location"]
        with urllib.request.urlopen(loc, timeout=10) as r:
            self.assertEqual(r.read(), new_zip)

    def test_updates_under_load_never_break_invokes(self):
        import threading
        src = "def handler(e, c):\n    return %r\n"
        name, _ = self.create_function(harness.python_zip(src % "v0"), PY, HANDLER)
        stop, seen, errors = threading.Event(), [], []

        def load():
            lam = self.server.client()
            while not stop.is_set():
                try:
                    resp = lam.invoke(FunctionName=name, Payload=b"{}")
                    body = json.loads(resp["Payload"].read())
                    if "FunctionError" in resp:
                        errors.append(body)
                    seen.append(body)
                except Exception as e:  # reported below
                    errors.append(repr(e))
        threads = [threading.Thread(target=load) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for v in ("v1", "v2", "v3"):
                self.lam.update_function_code(FunctionName=name, ZipFile=harness.python_zip(src % v))
                harness.wait_active(self.lam, name)
                self.lam.update_function_configuration(FunctionName=name, Description=v)
                harness.wait_active(self.lam, name)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [], "invokes failed during updates")
        self.assertTrue(seen)
        self.assertEqual(self.invoke(name, {}), "v3")

    def test_update_function_configuration_round_trips_and_applies(self):
        name, _ = self.create_function(self.zip, PY, HANDLER,
                                       Environment={"Variables": {"VV": "old"}})
        self.assertEqual(self.invoke(name, {"action": "env"})["VV"], "old")
        resp = self.lam.update_function_configuration(
            FunctionName=name, MemorySize=512, Timeout=10, Description="new",
            Environment={"Variables": {"VV": "new", "WW": "w"}}, EphemeralStorage={"Size": 2048})
        for k, v in {"MemorySize": 512, "Timeout": 10, "Description": "new",
                     "Environment": {"Variables": {"VV": "new", "WW": "w"}},
                     "EphemeralStorage": {"Size": 2048}}.items():
            self.assertEqual(resp.get(k), v, k)
        harness.wait_active(self.lam, name)
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual(cfg["MemorySize"], 512)
        self.assertEqual(cfg["Handler"], HANDLER)  # untouched fields kept
        env = self.invoke(name, {"action": "env"})
        self.assertEqual(env["VV"], "new")
        self.assertEqual(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "512")

    def test_update_handler(self):
        src = "def a(e, c):\n    return 'a'\ndef b(e, c):\n    return 'b'\n"
        name, _ = self.create_function(harness.python_zip(src), PY, "lambda_function.a")
        self.assertEqual(self.invoke(name, {}), "a")
        self.lam.update_function_configuration(FunctionName=name, Handler="lambda_function.b")
        harness.wait_active(self.lam, name)
        self.assertEqual(self.invoke(name, {}), "b")

    def test_delete_function(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        resp = self.lam.delete_function(FunctionName=name)
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name),
                               "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.invoke(FunctionName=name, Payload=b"{}"),
                               "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.delete_function(FunctionName=name),
                               "ResourceNotFoundException", 404)
        self.assertNotIn(name, [f["FunctionName"] for f in self.lam.list_functions()["Functions"]])
        # the name is free again
        harness.create_function(self.lam, name, self.zip, PY, HANDLER)
        self.assertEqual(self.invoke(name, {"action": "echo", "data": 5}), 5)

    def test_delete_while_warm_then_recreate_runs_new_code(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        self.invoke(name, {"action": "state"})
        self.lam.delete_function(FunctionName=name)
        harness.create_function(self.lam, name, harness.python_zip(
            "def handler(e, c):\n    return 'reborn'\n"), PY, HANDLER)
        self.assertEqual(self.invoke(name, {}), "reborn")

    def test_arn_forms(self):
        name, resp = self.create_function(self.zip, PY, HANDLER)
        arn = resp["FunctionArn"]
        account = harness.arn_account(arn)
        self.assertRegex(account, r"^\d{12}$")
        for form in (name, "%s:function:%s" % (account, name), arn, arn + ":$LATEST"):
            cfg = self.lam.get_function_configuration(FunctionName=form)
            self.assertEqual(cfg["FunctionArn"], arn, form)
            self.assertEqual(self.invoke(form, {"action": "echo", "data": form}), form)
        self.assertEqual(self.lam.get_function(FunctionName=name, Qualifier="$LATEST")
                         ["Configuration"]["FunctionName"], name)
        resp = self.lam.invoke(FunctionName=name, Qualifier="$LATEST", Payload=b'{"action":"echo","data":1}')
        self.assertEqual(json.loads(resp["Payload"].read()), 1)
        self.assertEqual(resp["ExecutedVersion"], "$LATEST")

    def test_account_settings(self):
        before = self.lam.get_account_settings()
        self.create_function(self.zip, PY, HANDLER)
        s = self.lam.get_account_settings()
        limit, usage = s["AccountLimit"], s["AccountUsage"]
        self.assertEqual(limit["CodeSizeUnzipped"], 262144000)
        self.assertEqual(limit["CodeSizeZipped"], 52428800)
        self.assertGreater(limit["TotalCodeSize"], 0)
        self.assertGreater(limit["ConcurrentExecutions"], 0)
        self.assertIn("UnreservedConcurrentExecutions", limit)
        self.assertEqual(usage["FunctionCount"], before["AccountUsage"]["FunctionCount"] + 1)
        self.assertGreaterEqual(usage["TotalCodeSize"], before["AccountUsage"]["TotalCodeSize"])
        self.assertEqual(usage["FunctionCount"],
                         sum(len(p["Functions"]) for p in
                             self.lam.get_paginator("list_functions").paginate()))

    def test_trailing_slash_paths_as_older_sdks_send(self):
        # AWS CLI v2.9's model (Debian's awscli) has ListFunctions at /2015-03-31/functions/
        # and GetAccountSettings at /2016-08-19/account-settings/; AWS accepts both forms.
        for path, key in (("/2015-03-31/functions/", "Functions"),
                          ("/2016-08-19/account-settings/", "AccountLimit")):
            r = harness.signed_request(self.server, "GET", path)
            self.assertEqual(r.status, 200, "GET %s -> %r" % (path, r))
            self.assertIn(key, r.json())

    def test_all_runtimes_accepted(self):
        for runtime in ("python3.11", "nodejs20.x", "provided.al2023", "provided.al2"):
            name, resp = self.create_function(functions.zip_for(
                runtime if runtime != "provided.al2" else "provided.al2023"), runtime,
                "index.handler", wait=False)
            self.assertEqual(resp["Runtime"], runtime)


if __name__ == "__main__":
    harness.main()
