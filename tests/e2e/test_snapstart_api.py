"""SnapStart's configuration as the Lambda API shows it (issue 11), through boto3.

The setting on CreateFunction / UpdateFunctionConfiguration, its validation from the
model, and SnapStart {ApplyOn, OptimizationStatus} on every configuration output:
$LATEST is Off, a published version of a SnapStart function is On. Whether the
published version goes Pending -> Active through a real snapshot is the worker's test;
here the version only has to become Active (boto3's published_version_active waiter).
"""
import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
SOURCE = "def handler(event, context):\n    return {'ok': True}\n"
FAST_WAIT = {"Delay": 1, "MaxAttempts": 120}
OFF = {"ApplyOn": "None", "OptimizationStatus": "Off"}
LATEST_ON = {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
VERSION_ON = {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}


class SnapStartApiTest(harness.KilnTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip = harness.python_zip(SOURCE)

    def test_default_is_off_everywhere(self):
        name, resp = self.create_function(self.zip, PY, HANDLER)
        self.assertEqual(resp["SnapStart"], OFF)
        self.assertEqual(self.lam.get_function_configuration(FunctionName=name)["SnapStart"], OFF)
        version = self.lam.publish_version(FunctionName=name)
        self.assertEqual(version["SnapStart"], OFF)
        self.assertEqual(version["State"], "Active", "no snapshot without SnapStart")

    def test_create_get_list_and_publish(self):
        name, resp = self.create_function(self.zip, PY, HANDLER,
                                          SnapStart={"ApplyOn": "PublishedVersions"})
        self.assertEqual(resp["SnapStart"], LATEST_ON)
        self.assertEqual(self.lam.get_function(FunctionName=name)["Configuration"]["SnapStart"], LATEST_ON)
        listed = [f for f in self.lam.list_functions()["Functions"] if f["FunctionName"] == name]
        self.assertEqual(listed[0]["SnapStart"], LATEST_ON)

        published = self.lam.publish_version(FunctionName=name, Description="snap")
        self.assertEqual(published["SnapStart"], VERSION_ON)
        self.assertIn(published["State"], ("Pending", "Active"))
        if published["State"] == "Pending":
            self.assertEqual(published.get("StateReasonCode"), "Creating")
        version = published["Version"]
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=version, WaiterConfig=FAST_WAIT)
        cfg = self.lam.get_function_configuration(FunctionName=name, Qualifier=version)
        self.assertEqual(cfg["State"], "Active")
        self.assertEqual(cfg["SnapStart"], VERSION_ON)
        self.assertNotIn("StateReasonCode", cfg)
        versions = self.lam.list_versions_by_function(FunctionName=name)["Versions"]
        by_version = {v["Version"]: v["SnapStart"] for v in versions}
        self.assertEqual(by_version, {"$LATEST": LATEST_ON, version: VERSION_ON})
        out = self.lam.invoke(FunctionName=name, Qualifier=version)
        self.assertEqual(out["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertEqual(out["ExecutedVersion"], version)

    def test_create_with_publish_answers_the_published_version(self):
        name = harness.unique_name("snappub")
        resp = self.lam.create_function(FunctionName=name, Runtime=PY, Handler=HANDLER, Role=harness.ROLE,
                                        Code={"ZipFile": self.zip}, Publish=True,
                                        SnapStart={"ApplyOn": "PublishedVersions"})
        self.assertEqual(resp["Version"], "1")
        self.assertEqual(resp["SnapStart"], VERSION_ON)
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier="1", WaiterConfig=FAST_WAIT)

    def test_update_turns_it_on_and_off(self):
        name, _ = self.create_function(self.zip, PY, HANDLER)
        on = self.lam.update_function_configuration(FunctionName=name,
                                                    SnapStart={"ApplyOn": "PublishedVersions"})
        self.assertEqual(on["SnapStart"], LATEST_ON)
        harness.wait_active(self.lam, name)
        kept = self.lam.update_function_configuration(FunctionName=name, Timeout=5)
        self.assertEqual(kept["SnapStart"], LATEST_ON, "an update without SnapStart keeps it")
        harness.wait_active(self.lam, name)
        v1 = self.lam.publish_version(FunctionName=name)
        self.assertEqual(v1["SnapStart"], VERSION_ON)
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=v1["Version"], WaiterConfig=FAST_WAIT)

        off = self.lam.update_function_configuration(FunctionName=name, SnapStart={"ApplyOn": "None"})
        self.assertEqual(off["SnapStart"], OFF)
        harness.wait_active(self.lam, name)
        v2 = self.lam.publish_version(FunctionName=name)
        self.assertEqual(v2["SnapStart"], OFF)
        self.assertEqual(v2["State"], "Active")
        again = self.lam.get_function_configuration(FunctionName=name, Qualifier=v1["Version"])
        self.assertEqual(again["SnapStart"], VERSION_ON, "a published version keeps its setting")

    def test_bad_values_are_the_models_validation_errors(self):
        # botocore validates the enum client-side only for types, so the server answers.
        expect = ("1 validation error detected: Value 'Always' at 'snapStart.applyOn' failed to satisfy "
                  "constraint: Member must satisfy enum value set: [PublishedVersions, None]")
        name = harness.unique_name("snapbad")
        err = self.assertClientError(
            lambda: self.lam.create_function(FunctionName=name, Runtime=PY, Handler=HANDLER, Role=harness.ROLE,
                                             Code={"ZipFile": self.zip}, SnapStart={"ApplyOn": "Always"}),
            "ValidationException", 400)
        self.assertEqual(err.response["Error"]["Message"], expect)
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name), "ResourceNotFoundException", 404)

        name, _ = self.create_function(self.zip, PY, HANDLER)
        err = self.assertClientError(
            lambda: self.lam.update_function_configuration(FunctionName=name, SnapStart={"ApplyOn": "Always"}),
            "ValidationException", 400)
        self.assertEqual(err.response["Error"]["Message"], expect)
        self.assertEqual(self.lam.get_function_configuration(FunctionName=name)["SnapStart"], OFF)

    def test_setting_survives_a_restart(self):
        name, _ = self.create_function(self.zip, PY, HANDLER, SnapStart={"ApplyOn": "PublishedVersions"})
        version = self.lam.publish_version(FunctionName=name)["Version"]
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=version, WaiterConfig=FAST_WAIT)
        self.server.restart()
        self.lam = self.server.client()
        self.assertEqual(self.lam.get_function_configuration(FunctionName=name)["SnapStart"], LATEST_ON)
        cfg = self.lam.get_function_configuration(FunctionName=name, Qualifier=version)
        self.assertEqual(cfg["SnapStart"], VERSION_ON)
        self.assertEqual(cfg["State"], "Active")


if __name__ == "__main__":
    harness.main()
