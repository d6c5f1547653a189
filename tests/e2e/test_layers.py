"""Lambda layers through boto3: PublishLayerVersion, GetLayerVersion(ByArn), ListLayers,
ListLayerVersions, DeleteLayerVersion, and functions that use layers at /opt."""
import json
import os
import re
import tempfile
import urllib.request

import botocore.exceptions

import functions
import harness
from harness import code_sha256

PY = "python3.11"
HANDLER = "lambda_function.handler"
ARN_RE = r"^arn:aws:lambda:us-east-1:\d{12}:layer:%s$"
DATE_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$"


def layer_zip(files):
    return harness.make_zip(files)


class LayerApiTest(harness.KilnTestCase):

    def publish(self, name, zip_bytes=None, **kw):
        zip_bytes = zip_bytes or layer_zip({"python/mod.py": "X = 1\n"})
        return self.lam.publish_layer_version(LayerName=name, Content={"ZipFile": zip_bytes}, **kw)

    def test_publish_numbers_versions_and_get_returns_them(self):
        name = harness.unique_name("deps")
        zip_bytes = layer_zip({"python/deps.py": "VALUE = 42\n"})
        v1 = self.publish(name, zip_bytes, Description="shared deps", LicenseInfo="MIT",
                          CompatibleRuntimes=[PY, "python3.12"], CompatibleArchitectures=["x86_64"])
        self.assertEqual(v1["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(v1["Version"], 1)
        self.assertRegex(v1["LayerArn"], ARN_RE % re.escape(name))
        self.assertEqual(v1["LayerVersionArn"], v1["LayerArn"] + ":1")
        self.assertEqual(v1["Content"]["CodeSha256"], code_sha256(zip_bytes))
        self.assertEqual(v1["Content"]["CodeSize"], len(zip_bytes))
        self.assertEqual(v1["Description"], "shared deps")
        self.assertEqual(v1["LicenseInfo"], "MIT")
        self.assertEqual(v1["CompatibleRuntimes"], [PY, "python3.12"])
        self.assertEqual(v1["CompatibleArchitectures"], ["x86_64"])
        self.assertRegex(v1["CreatedDate"], DATE_RE)
        v2 = self.publish(name)
        self.assertEqual(v2["Version"], 2)
        got = self.lam.get_layer_version(LayerName=name, VersionNumber=1)
        for k in ("LayerArn", "LayerVersionArn", "Version", "Description", "LicenseInfo",
                  "CompatibleRuntimes", "CompatibleArchitectures", "CreatedDate"):
            self.assertEqual(got[k], v1[k], k)
        self.assertEqual(got["Content"]["CodeSha256"], code_sha256(zip_bytes))
        by_arn = self.lam.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])
        self.assertEqual(by_arn["Version"], 2)
        by_name_arn = self.lam.get_layer_version(LayerName=v1["LayerArn"], VersionNumber=1)
        self.assertEqual(by_name_arn["LayerVersionArn"], v1["LayerVersionArn"])

    def test_content_location_downloads_the_zip(self):
        zip_bytes = layer_zip({"bin/tool": ("#!/bin/sh\necho tool\n", 0o755)})
        v = self.publish(harness.unique_name("dl"), zip_bytes)
        with urllib.request.urlopen(v["Content"]["Location"], timeout=30) as r:
            self.assertEqual(r.read(), zip_bytes)

    def test_list_layers_shows_latest_matching_version_and_pages(self):
        prefix = harness.unique_name("list")
        names = ["%s-%d" % (prefix, i) for i in range(5)]
        for n in names:
            self.publish(n, CompatibleRuntimes=[PY], CompatibleArchitectures=["x86_64"])
        self.publish(names[0], CompatibleRuntimes=["nodejs20.x"], CompatibleArchitectures=["arm64"])
        seen = {}
        pages = self.lam.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 2})
        for page in pages:
            self.assertLessEqual(len(page["Layers"]), 2)
            for item in page["Layers"]:
                seen[item["LayerName"]] = item
        mine = {n: seen[n] for n in names}
        self.assertEqual(mine[names[0]]["LatestMatchingVersion"]["Version"], 2)
        self.assertEqual(mine[names[1]]["LatestMatchingVersion"]["Version"], 1)
        self.assertRegex(mine[names[1]]["LayerArn"], ARN_RE % re.escape(names[1]))
        self.assertEqual(mine[names[1]]["LatestMatchingVersion"]["LayerVersionArn"],
                         mine[names[1]]["LayerArn"] + ":1")
        py = {i["LayerName"]: i for i in self.lam.list_layers(CompatibleRuntime=PY, MaxItems=50)["Layers"]}
        self.assertEqual(py[names[0]]["LatestMatchingVersion"]["Version"], 1)
        arm = [i["LayerName"] for i in self.lam.list_layers(CompatibleArchitecture="arm64")["Layers"]]
        self.assertIn(names[0], arm)
        self.assertNotIn(names[1], arm)

    def test_list_layer_versions_newest_first_and_pages(self):
        name = harness.unique_name("vers")
        for _ in range(4):
            self.publish(name)
        versions = [v["Version"] for v in self.lam.list_layer_versions(LayerName=name)["LayerVersions"]]
        self.assertEqual(versions, [4, 3, 2, 1])
        first = self.lam.list_layer_versions(LayerName=name, MaxItems=3)
        self.assertEqual([v["Version"] for v in first["LayerVersions"]], [4, 3, 2])
        rest = self.lam.list_layer_versions(LayerName=name, MaxItems=3, Marker=first["NextMarker"])
        self.assertEqual([v["Version"] for v in rest["LayerVersions"]], [1])
        self.assertNotIn("NextMarker", rest)
        self.assertEqual(self.lam.list_layer_versions(LayerName=harness.unique_name("none"))["LayerVersions"], [])

    def test_delete_is_idempotent_and_numbers_are_not_reused(self):
        name = harness.unique_name("del")
        self.publish(name)
        self.publish(name)
        r = self.lam.delete_layer_version(LayerName=name, VersionNumber=2)
        self.assertEqual(r["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.lam.delete_layer_version(LayerName=name, VersionNumber=2)
        self.lam.delete_layer_version(LayerName=name, VersionNumber=99)
        self.assertClientError(lambda: self.lam.get_layer_version(LayerName=name, VersionNumber=2),
                               "ResourceNotFoundException", 404)
        self.assertEqual(self.publish(name)["Version"], 3)
        versions = [v["Version"] for v in self.lam.list_layer_versions(LayerName=name)["LayerVersions"]]
        self.assertEqual(versions, [3, 1])

    def test_unknown_layers_and_versions_are_not_found(self):
        name = harness.unique_name("nf")
        self.publish(name)
        account = harness.arn_account(self.publish(name)["LayerArn"])
        other = "999999999999" if account != "999999999999" else "888888888888"
        calls = [lambda: self.lam.get_layer_version(LayerName=harness.unique_name("ghost"), VersionNumber=1),
                 lambda: self.lam.get_layer_version(LayerName=name, VersionNumber=9),
                 lambda: self.lam.get_layer_version_by_arn(
                     Arn="arn:aws:lambda:us-east-1:%s:layer:%s:9" % (account, name)),
                 lambda: self.lam.get_layer_version_by_arn(
                     Arn="arn:aws:lambda:us-east-1:%s:layer:%s:1" % (other, name))]
        for call in calls:
            self.assertClientError(call, "ResourceNotFoundException", 404)

    def test_bad_publish_requests_get_lambdas_errors(self):
        name = harness.unique_name("bad")
        self.assertClientError(lambda: self.publish(name, b"this is not a zip"),
                               "InvalidParameterValueException", 400)
        self.assertClientError(
            lambda: self.lam.publish_layer_version(LayerName=name, Content={"S3Bucket": "bkt", "S3Key": "k"}),
            "InvalidParameterValueException", 400)
        self.assertClientError(lambda: self.lam.publish_layer_version(LayerName=name, Content={}),
                               "InvalidParameterValueException", 400)
        self.assertEqual(self.lam.list_layer_versions(LayerName=name)["LayerVersions"], [])

        raw = self.server.client(validate=False)
        zip_bytes = layer_zip({"f": "x"})
        bad = [dict(LayerName="bad name", Content={"ZipFile": zip_bytes}),
               dict(LayerName="a" * 141, Content={"ZipFile": zip_bytes}),
               dict(LayerName=name, Content={"ZipFile": zip_bytes}, Description="d" * 257),
               dict(LayerName=name, Content={"ZipFile": zip_bytes}, CompatibleRuntimes=["cobol"]),
               dict(LayerName=name, Content={"ZipFile": zip_bytes}, CompatibleArchitectures=["mips"])]
        for kw in bad:
            with self.subTest(kw={k: v for k, v in kw.items() if k != "Content"}):
                self.assertClientError(lambda: raw.publish_layer_version(**kw), "ValidationException", 400)
        for call in (lambda: raw.list_layers(MaxItems=51),
                     lambda: raw.list_layers(CompatibleRuntime="cobol"),
                     lambda: raw.get_layer_version_by_arn(Arn="arn:aws:lambda:us-east-1:1:layer:x"),
                     lambda: raw.get_layer_version(LayerName=name, VersionNumber=0)):
            self.assertClientError(call, "ValidationException", 400)
        self.assertServing()

    def test_raw_garbage_body_is_refused(self):
        name = harness.unique_name("raw")
        r = harness.signed_request(self.server, "POST", "/2018-10-31/layers/%s/versions" % name, b"{not json")
        self.assertEqual(r.status, 400, r)
        self.assertIn("InvalidRequestContentException", (r.header("x-amzn-ErrorType") or "") + r.body.decode())
        self.assertServing()


class LayerPersistenceTest(harness.KilnTestCase):

    def test_layers_survive_restart_and_numbering_continues(self):
        name = harness.unique_name("keep")
        zip_bytes = layer_zip({"python/keep.py": "K = 1\n"})
        for _ in range(2):
            self.lam.publish_layer_version(LayerName=name, Content={"ZipFile": zip_bytes})
        self.lam.delete_layer_version(LayerName=name, VersionNumber=2)
        self.server.kill9()
        self.server.start()
        lam = self.server.client()
        got = lam.get_layer_version(LayerName=name, VersionNumber=1)
        self.assertEqual(got["Content"]["CodeSha256"], code_sha256(zip_bytes))
        v = lam.publish_layer_version(LayerName=name, Content={"ZipFile": zip_bytes})
        self.assertEqual(v["Version"], 3)


class LayerCliTest(harness.KilnTestCase):
    """The AWS CLI v2 publishes, lists, gets and deletes layer versions unchanged."""

    def test_cli_v2_layer_lifecycle(self):
        harness.cli_command(2)
        home = tempfile.mkdtemp(prefix="kiln-cli-home-", dir=self.server.tmp)
        env = harness.clean_cli_env(home)
        env.update({"AWS_ACCESS_KEY_ID": harness.TEST_ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": harness.TEST_SECRET_KEY,
                    "AWS_DEFAULT_REGION": harness.REGION})
        zip_path = os.path.join(home, "layer.zip")
        zip_bytes = layer_zip({"python/cli.py": "C = 1\n"})
        with open(zip_path, "wb") as f:
            f.write(zip_bytes)

        def aws(*args):
            r = harness.run_cli(2, ["lambda"] + list(args) + ["--endpoint-url", self.server.endpoint,
                                                             "--output", "json"], env)
            self.assertEqual(r.returncode, 0, "aws %s failed:\n%s\n%s" % (" ".join(args), r.stdout, r.stderr))
            return json.loads(r.stdout) if r.stdout.strip() else {}

        name = harness.unique_name("cli")
        out = aws("publish-layer-version", "--layer-name", name, "--zip-file", "fileb://" + zip_path,
                  "--compatible-runtimes", PY, "--description", "from the cli")
        self.assertEqual(out["Version"], 1)
        self.assertEqual(out["Content"]["CodeSha256"], code_sha256(zip_bytes))
        got = aws("get-layer-version", "--layer-name", name, "--version-number", "1")
        self.assertEqual(got["Description"], "from the cli")
        listed = aws("list-layers", "--compatible-runtime", PY)
        self.assertIn(name, [layer["LayerName"] for layer in listed["Layers"]])
        self.assertEqual([v["Version"] for v in aws("list-layer-versions", "--layer-name", name)["LayerVersions"]],
                         [1])
        aws("delete-layer-version", "--layer-name", name, "--version-number", "1")
        self.assertEqual(aws("list-layer-versions", "--layer-name", name)["LayerVersions"], [])


LAYER_PROBE_SOURCE = r'''
import os
def handler(event, context):
    import shared
    return {"who": shared.WHO}
'''


class FunctionLayersTest(harness.KilnTestCase):
    """Functions with Layers: needs the registry to resolve layer ARNs (the lead wires
    LayerStore::resolve into Registry::set_layer_resolver in server.cc)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.layer = {}
        for who in ("a", "b"):
            v = cls.lam.publish_layer_version(
                LayerName=harness.unique_name("shared-" + who),
                Content={"ZipFile": layer_zip({"python/shared.py": "WHO = %r\n" % who,
                                               "python/only_%s.py" % who: "X = 1\n"})})
            cls.layer[who] = v["LayerVersionArn"]
        cls.not_wired = None
        try:
            harness.create_function(cls.lam, harness.unique_name("probe"), harness.python_zip(LAYER_PROBE_SOURCE),
                                    PY, HANDLER, Layers=[cls.layer["a"]])
        except botocore.exceptions.ClientError as e:
            cls.not_wired = ("function Layers are not wired yet: CreateFunction with Layers=[arn] answered %s"
                             % e.response["Error"])

    def setUp(self):
        if self.not_wired:
            self.skipTest(self.not_wired)

    def invoke(self, name, event=None):
        resp = self.lam.invoke(FunctionName=name, Payload=json.dumps(event or {}).encode())
        payload = resp["Payload"].read()
        self.assertNotIn("FunctionError", resp, payload)
        return json.loads(payload)

    def test_python_function_imports_a_module_from_its_layer(self):
        name, resp = self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                          Layers=[self.layer["a"]])
        size = self.lam.get_layer_version_by_arn(Arn=self.layer["a"])["Content"]["CodeSize"]
        self.assertEqual(resp["Layers"], [{"Arn": self.layer["a"], "CodeSize": size}])
        self.assertEqual(self.invoke(name), {"who": "a"})

    def test_later_layers_override_earlier_ones(self):
        ab, _ = self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                     Layers=[self.layer["a"], self.layer["b"]])
        ba, _ = self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                     Layers=[self.layer["b"], self.layer["a"]])
        self.assertEqual(self.invoke(ab), {"who": "b"})
        self.assertEqual(self.invoke(ba), {"who": "a"})

    def test_opt_is_read_only_and_merges_every_layer(self):
        src = r'''
import os
def handler(event, context):
    try:
        open("/opt/python/new.py", "w").write("x")
        write = "ok"
    except OSError as e:
        write = type(e).__name__
    return {"write": write, "files": sorted(os.listdir("/opt/python"))}
'''
        name, _ = self.create_function(harness.python_zip(src), PY, HANDLER,
                                       Layers=[self.layer["a"], self.layer["b"]])
        out = self.invoke(name)
        self.assertNotEqual(out["write"], "ok")
        self.assertEqual(out["files"], ["only_a.py", "only_b.py", "shared.py"])

    def test_provided_function_runs_the_bootstrap_from_opt(self):
        layer = self.lam.publish_layer_version(
            LayerName=harness.unique_name("runtime"),
            Content={"ZipFile": layer_zip({"bootstrap": (functions.PROVIDED, 0o755)})})
        name, _ = self.create_function(layer_zip({"README": "code lives in the layer\n"}), "provided.al2023",
                                       "unused", Layers=[layer["LayerVersionArn"]])
        resp = self.lam.invoke(FunctionName=name, Payload=json.dumps({"action": "echo", "data": "via-opt"}))
        payload = resp["Payload"].read()
        if "FunctionError" in resp and b"bootstrap" in payload:
            self.skipTest("the worker does not fall back to /opt/bootstrap when /var/task has none: %r"
                          % payload)
        self.assertNotIn("FunctionError", resp, payload)
        self.assertEqual(json.loads(payload), "via-opt")

    def test_update_configuration_changes_layers(self):
        name, _ = self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                       Layers=[self.layer["a"]])
        self.assertEqual(self.invoke(name), {"who": "a"})
        self.lam.update_function_configuration(FunctionName=name, Layers=[self.layer["b"]])
        harness.wait_active(self.lam, name)
        self.assertEqual(self.invoke(name), {"who": "b"})

    def test_deleted_layer_version_keeps_serving_its_functions(self):
        v = self.lam.publish_layer_version(
            LayerName=harness.unique_name("doomed"),
            Content={"ZipFile": layer_zip({"python/shared.py": "WHO = 'doomed'\n"})})
        name, _ = self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                       Layers=[v["LayerVersionArn"]])
        self.lam.delete_layer_version(LayerName=v["LayerArn"], VersionNumber=v["Version"])
        self.assertEqual(self.invoke(name), {"who": "doomed"})
        self.assertClientError(
            lambda: self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                         Layers=[v["LayerVersionArn"]]),
            "InvalidParameterValueException", 400)

    def test_more_than_five_layers_is_refused(self):
        arns = [self.layer["a"], self.layer["b"]] * 3
        self.assertClientError(
            lambda: self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER, Layers=arns),
            "InvalidParameterValueException", 400)
        self.assertServing()

    def test_missing_layers_are_refused_and_nothing_is_left(self):
        account = harness.arn_account(self.layer["a"])
        missing = [self.layer["a"].rsplit(":", 1)[0] + ":999",
                   "arn:aws:lambda:us-east-1:%s:layer:%s:1" % (account, harness.unique_name("ghost")),
                   "arn:aws:lambda:us-east-1:999999999999:layer:theirs:1"]
        for arn in missing:
            name = harness.unique_name("miss")
            with self.subTest(arn=arn):
                self.assertClientError(
                    lambda: self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER, name=name,
                                                 Layers=[arn]),
                    ("InvalidParameterValueException", "AccessDeniedException"))
                self.assertClientError(lambda: self.lam.get_function(FunctionName=name),
                                       "ResourceNotFoundException", 404)
        raw = self.server.client(validate=False)
        self.assertClientError(
            lambda: harness.create_function(raw, harness.unique_name("malformed"),
                                            harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                            Layers=["not-an-arn"]),
            ("ValidationException", "InvalidParameterValueException"), 400)

    def test_code_and_layers_over_250_mb_unzipped_are_refused(self):
        # Each archive is small (zeros compress ~1000:1) and under the limit alone.
        big = [self.lam.publish_layer_version(
                   LayerName=harness.unique_name("big"),
                   Content={"ZipFile": layer_zip({"zeros-%d" % i: b"\0" * (100 * harness.MB)})})
               for i in range(2)]
        code = harness.make_zip({"lambda_function.py": LAYER_PROBE_SOURCE, "pad": b"\0" * (60 * harness.MB)})
        name = harness.unique_name("toobig")
        self.assertClientError(
            lambda: self.create_function(code, PY, HANDLER, name=name,
                                         Layers=[b["LayerVersionArn"] for b in big]),
            "InvalidParameterValueException", 400, msg_contains="262144000")
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name), "ResourceNotFoundException")
        ok, _ = self.create_function(harness.python_zip(LAYER_PROBE_SOURCE), PY, HANDLER,
                                     Layers=[b["LayerVersionArn"] for b in big])
        self.assertClientError(
            lambda: self.lam.update_function_code(FunctionName=ok, ZipFile=code),
            "InvalidParameterValueException", 400)


if __name__ == "__main__":
    harness.main()
