"""Versions, aliases, function states, RevisionId, tags (issue 5) through boto3 and its waiters.

Each function returns the mark baked into its code and the version its context reports,
so a response tells which code ran; ExecutedVersion tells which version was routed.
"""
import collections
import json
import threading
import time

import botocore.exceptions

import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
FAST_WAIT = {"Delay": 1, "MaxAttempts": 60}

SOURCE = '''
import os
MARK = %r
def handler(event, context):
    return {"mark": MARK, "version": context.function_version,
            "arn": context.invoked_function_arn, "v": os.environ.get("VV")}
'''
SLOW_INIT = "import time\ntime.sleep(%s)\n" + SOURCE
FAILING_INIT = "raise RuntimeError('init refuses: %s')\n"


def marked_zip(mark):
    return harness.python_zip(SOURCE % mark)


class VersionsTest(harness.KilnTestCase):

    def invoke(self, name, qualifier=None, lam=None):
        kw = {"Qualifier": qualifier} if qualifier else {}
        resp = (lam or self.lam).invoke(FunctionName=name, Payload=b"{}", **kw)
        body = json.loads(resp["Payload"].read())
        self.assertNotIn("FunctionError", resp, body)
        return resp["ExecutedVersion"], body

    def new_function(self, mark="a", **kw):
        name, resp = self.create_function(marked_zip(mark), PY, HANDLER, **kw)
        return name

    def update_code(self, name, zip_bytes, **kw):
        resp = self.lam.update_function_code(FunctionName=name, ZipFile=zip_bytes, **kw)
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        return resp

    def versions(self, name):
        return [v["Version"] for v in
                self.lam.list_versions_by_function(FunctionName=name)["Versions"]]

    # ------------------------------------------------------------ publish / list

    def test_publish_version_preconditions_and_idempotence(self):
        name = self.new_function("a")
        v1 = self.lam.publish_version(FunctionName=name, Description="first")
        self.assertEqual(v1["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(v1["Version"], "1")
        self.assertTrue(v1["FunctionArn"].endswith(":function:%s:1" % name), v1["FunctionArn"])
        self.assertEqual(v1["Description"], "first")
        self.assertEqual(v1["CodeSha256"], harness.code_sha256(marked_zip("a")))
        # Nothing changed: the same version comes back, no new one is made.
        again = self.lam.publish_version(FunctionName=name)
        self.assertEqual(again["Version"], "1")
        self.assertEqual(self.versions(name), ["$LATEST", "1"])

        self.update_code(name, marked_zip("b"))
        latest = self.lam.get_function_configuration(FunctionName=name)
        self.assertClientError(
            lambda: self.lam.publish_version(FunctionName=name, CodeSha256=v1["CodeSha256"]),
            "InvalidParameterValueException", 400)
        self.assertClientError(
            lambda: self.lam.publish_version(FunctionName=name, RevisionId=v1["RevisionId"]),
            "PreconditionFailedException", 412)
        self.assertEqual(self.versions(name), ["$LATEST", "1"], "a refused publish made a version")
        v2 = self.lam.publish_version(FunctionName=name, CodeSha256=latest["CodeSha256"],
                                      RevisionId=latest["RevisionId"])
        self.assertEqual(v2["Version"], "2")
        self.assertEqual(self.versions(name), ["$LATEST", "1", "2"])
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier="2", WaiterConfig=FAST_WAIT)

    def test_list_versions_paginates(self):
        name = self.new_function("p")
        for i in range(4):
            self.lam.update_function_configuration(FunctionName=name, Description="d%d" % i)
            self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
            self.assertEqual(self.lam.publish_version(FunctionName=name)["Version"], str(i + 1))
        pages = list(self.lam.get_paginator("list_versions_by_function").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 2}))
        self.assertEqual(len(pages), 3)
        seen = [v["Version"] for p in pages for v in p["Versions"]]
        self.assertEqual(seen, ["$LATEST", "1", "2", "3", "4"])
        self.assertEqual([v["Description"] for p in pages for v in p["Versions"]][1:],
                         ["d0", "d1", "d2", "d3"])
        self.assertClientError(lambda: self.lam.list_versions_by_function(
            FunctionName=name, Marker="bm90LWEtbnVtYmVy"), "InvalidParameterValueException")

    # ------------------------------------------------------------ qualified names

    def test_qualified_invokes_and_lookups(self):
        name = self.new_function("a")
        self.lam.publish_version(FunctionName=name)
        self.update_code(name, marked_zip("b"))
        self.lam.publish_version(FunctionName=name)
        self.update_code(name, marked_zip("c"))
        self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        arn = self.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]

        cases = [  # (FunctionName, Qualifier) -> (ExecutedVersion, mark)
            ((name, None), ("$LATEST", "c")),
            ((name + ":$LATEST", None), ("$LATEST", "c")),
            ((name, "$LATEST"), ("$LATEST", "c")),
            ((name + ":1", None), ("1", "a")),
            ((name, "2"), ("2", "b")),
            ((arn + ":2", None), ("2", "b")),
            ((arn, "1"), ("1", "a")),
            ((name + ":live", None), ("1", "a")),
            ((name, "live"), ("1", "a")),
            ((arn + ":live", None), ("1", "a")),
        ]
        for (fn, q), (version, mark) in cases:
            executed, body = self.invoke(fn, q)
            self.assertEqual((executed, body["mark"], body["version"]), (version, mark, version),
                             "invoke %s qualifier %s" % (fn, q))
            kw = {"Qualifier": q} if q else {}
            cfg = self.lam.get_function_configuration(FunctionName=fn, **kw)
            self.assertEqual(cfg["Version"], version, "GetFunctionConfiguration %s %s" % (fn, q))
            self.assertEqual(cfg["CodeSha256"], harness.code_sha256(marked_zip(mark)))
            got = self.lam.get_function(FunctionName=fn, **kw)["Configuration"]
            self.assertEqual(got["Version"], version, "GetFunction %s %s" % (fn, q))
        # A qualifier in the name and a different Qualifier parameter disagree.
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name + ":1", Qualifier="2"),
                               "InvalidParameterValueException")

    def test_context_invoked_arn_carries_the_qualifier(self):
        # Lambda's context.invoked_function_arn is the ARN the caller used, qualifier included.
        name = self.new_function("a")
        self.lam.publish_version(FunctionName=name)
        self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
        arn = self.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        self.assertEqual(self.invoke(name)[1]["arn"], arn)
        self.assertEqual(self.invoke(name, "1")[1]["arn"], arn + ":1")
        self.assertEqual(self.invoke(name, "live")[1]["arn"], arn + ":live")

    def test_unknown_versions_and_aliases_are_not_found(self):
        name = self.new_function("a")
        self.lam.publish_version(FunctionName=name)
        for q in ("7", "nope", "99999999999999999"):
            self.assertClientError(lambda: self.lam.invoke(FunctionName=name, Qualifier=q),
                                   "ResourceNotFoundException", 404)
            self.assertClientError(lambda: self.lam.get_function_configuration(
                FunctionName=name, Qualifier=q), "ResourceNotFoundException", 404)
            self.assertClientError(lambda: self.lam.invoke(FunctionName="%s:%s" % (name, q)),
                                   "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.get_alias(FunctionName=name, Name="nope"),
                               "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.update_alias(FunctionName=name, Name="nope",
                                                             FunctionVersion="1"),
                               "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.create_alias(FunctionName=name, Name="x",
                                                             FunctionVersion="5"),
                               "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.delete_function(FunctionName=name, Qualifier="9"),
                               "ResourceNotFoundException", 404)
        self.assertEqual(self.lam.list_aliases(FunctionName=name)["Aliases"], [])
        self.assertEqual(self.versions(name), ["$LATEST", "1"])

    def test_published_versions_are_immutable(self):
        name = self.new_function("a", Environment={"Variables": {"VV": "old"}})
        self.lam.publish_version(FunctionName=name)
        self.lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"VV": "new"}},
                                               Timeout=9)
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        self.assertEqual(self.invoke(name)[1]["v"], "new")
        self.assertEqual(self.invoke(name, "1")[1]["v"], "old")
        v1 = self.lam.get_function_configuration(FunctionName=name, Qualifier="1")
        self.assertEqual((v1["Environment"]["Variables"]["VV"], v1["Timeout"]), ("old", 3))
        # Updates name $LATEST only: a qualified update is refused and changes nothing.
        self.assertClientError(lambda: self.lam.update_function_configuration(
            FunctionName=name + ":1", Timeout=20), ("ValidationException", "InvalidParameterValueException"))
        self.assertClientError(lambda: self.lam.update_function_code(
            FunctionName=name + ":1", ZipFile=marked_zip("z")),
            ("ValidationException", "InvalidParameterValueException"))
        self.assertEqual(self.lam.get_function_configuration(FunctionName=name, Qualifier="1")["Timeout"], 3)
        self.assertEqual(self.invoke(name, "1")[1]["mark"], "a")

    def test_delete_function_with_qualifier(self):
        name = self.new_function("a")
        self.lam.publish_version(FunctionName=name)
        self.update_code(name, marked_zip("b"))
        self.lam.publish_version(FunctionName=name)
        self.assertClientError(lambda: self.lam.delete_function(FunctionName=name, Qualifier="$LATEST"),
                               "InvalidParameterValueException", 400)
        self.lam.delete_function(FunctionName=name, Qualifier="1")
        self.assertEqual(self.versions(name), ["$LATEST", "2"])
        self.assertClientError(lambda: self.lam.invoke(FunctionName=name, Qualifier="1"),
                               "ResourceNotFoundException", 404)
        self.lam.delete_function(FunctionName=name + ":2")
        self.assertEqual(self.versions(name), ["$LATEST"])
        self.assertEqual(self.invoke(name)[1]["mark"], "b")
        # The counter never reuses a deleted number.
        self.lam.update_function_configuration(FunctionName=name, Description="again")
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        self.assertEqual(self.lam.publish_version(FunctionName=name)["Version"], "3")
        self.lam.delete_function(FunctionName=name)
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name, Qualifier="3"),
                               "ResourceNotFoundException", 404)

    def test_create_and_update_code_with_publish(self):
        name = harness.unique_name("pub")
        harness.create_function(self.lam, name, marked_zip("a"), PY, HANDLER, Publish=True)
        self.assertEqual(self.versions(name), ["$LATEST", "1"])
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier="1", WaiterConfig=FAST_WAIT)
        executed, body = self.invoke(name, "1")
        self.assertEqual((executed, body["mark"], body["version"]), ("1", "a", "1"))
        self.update_code(name, marked_zip("b"), Publish=True)
        self.assertEqual(self.versions(name), ["$LATEST", "1", "2"])
        self.assertEqual(self.invoke(name, "2")[1]["mark"], "b")
        self.assertEqual(self.invoke(name, "1")[1]["mark"], "a")
        self.assertEqual(self.invoke(name)[1]["mark"], "b")
        v2 = self.lam.get_function_configuration(FunctionName=name, Qualifier="2")
        self.assertEqual(v2["CodeSha256"], harness.code_sha256(marked_zip("b")))

    # ------------------------------------------------------------ aliases

    def test_alias_crud_and_list_filter(self):
        name = self.new_function("a")
        self.lam.publish_version(FunctionName=name)
        self.update_code(name, marked_zip("b"))
        self.lam.publish_version(FunctionName=name)
        live = self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1",
                                     Description="production")
        self.assertEqual(live["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertTrue(live["AliasArn"].endswith(":function:%s:live" % name), live)
        self.lam.create_alias(FunctionName=name, Name="beta", FunctionVersion="2")
        self.lam.create_alias(FunctionName=name, Name="edge", FunctionVersion="$LATEST")
        self.assertClientError(lambda: self.lam.create_alias(FunctionName=name, Name="live",
                                                             FunctionVersion="2"),
                               "ResourceConflictException", 409)
        got = self.lam.get_alias(FunctionName=name, Name="live")
        self.assertEqual((got["FunctionVersion"], got["Description"]), ("1", "production"))
        names = sorted(a["Name"] for a in self.lam.list_aliases(FunctionName=name)["Aliases"])
        self.assertEqual(names, ["beta", "edge", "live"])
        only2 = self.lam.list_aliases(FunctionName=name, FunctionVersion="2")["Aliases"]
        self.assertEqual([a["Name"] for a in only2], ["beta"])
        pages = list(self.lam.get_paginator("list_aliases").paginate(
            FunctionName=name, PaginationConfig={"PageSize": 1}))
        self.assertEqual(sorted(a["Name"] for p in pages for a in p["Aliases"]), names)

        self.assertEqual(self.invoke(name, "live")[0], "1")
        self.assertEqual(self.invoke(name, "edge")[0], "$LATEST")
        # RevisionId guards UpdateAlias; a refused update changes nothing.
        self.assertClientError(lambda: self.lam.update_alias(
            FunctionName=name, Name="live", FunctionVersion="2", RevisionId=live["RevisionId"] + "x"),
            "PreconditionFailedException", 412)
        self.assertEqual(self.lam.get_alias(FunctionName=name, Name="live")["RevisionId"], live["RevisionId"])
        moved = self.lam.update_alias(FunctionName=name, Name="live", FunctionVersion="2",
                                      RevisionId=live["RevisionId"])
        self.assertNotEqual(moved["RevisionId"], live["RevisionId"])
        self.assertEqual(moved["Description"], "production")
        executed, body = self.invoke(name, "live")
        self.assertEqual((executed, body["mark"]), ("2", "b"))
        self.lam.delete_alias(FunctionName=name, Name="live")
        self.assertClientError(lambda: self.lam.get_alias(FunctionName=name, Name="live"),
                               "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.invoke(FunctionName=name, Qualifier="live"),
                               "ResourceNotFoundException", 404)

    def test_bad_alias_requests_leave_nothing_behind(self):
        name = self.new_function("a")
        self.lam.publish_version(FunctionName=name)
        self.update_code(name, marked_zip("b"))
        self.lam.publish_version(FunctionName=name)
        self.update_code(name, marked_zip("c"))
        self.lam.publish_version(FunctionName=name)
        base = self.lam.create_alias(FunctionName=name, Name="base", FunctionVersion="1")
        raw = self.server.client(validate=False)
        bad_routes = [
            ({"2": 1.5}, "ValidationException"),
            ({"2": -0.1}, "ValidationException"),
            ({"$LATEST": 0.2}, "InvalidParameterValueException"),
            ({"2": 0.1, "3": 0.1}, "InvalidParameterValueException"),
            ({"1": 0.5}, "InvalidParameterValueException"),  # already the primary
            ({"9": 0.5}, "ResourceNotFoundException"),
        ]
        for weights, code in bad_routes:
            cfg = {"AdditionalVersionWeights": weights}
            self.assertClientError(lambda: raw.create_alias(
                FunctionName=name, Name="new", FunctionVersion="1", RoutingConfig=cfg), code)
            self.assertClientError(lambda: raw.update_alias(
                FunctionName=name, Name="base", RoutingConfig=cfg), code)
        self.assertClientError(lambda: raw.create_alias(
            FunctionName=name, Name="new", FunctionVersion="$LATEST",
            RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}), "InvalidParameterValueException")
        self.assertClientError(lambda: raw.create_alias(FunctionName=name, Name="123",
                                                        FunctionVersion="1"), "ValidationException")
        self.assertClientError(lambda: raw.create_alias(FunctionName=name, Name="bad name",
                                                        FunctionVersion="1"), "ValidationException")
        self.assertEqual([a["Name"] for a in self.lam.list_aliases(FunctionName=name)["Aliases"]], ["base"])
        now = self.lam.get_alias(FunctionName=name, Name="base")
        self.assertEqual(now["RevisionId"], base["RevisionId"])
        self.assertNotIn("RoutingConfig", now)

        # A version an alias points to (primary or additional) cannot be deleted.
        self.lam.update_alias(FunctionName=name, Name="base",
                              RoutingConfig={"AdditionalVersionWeights": {"3": 0.25}})
        for v in ("1", "3"):
            self.assertClientError(lambda: self.lam.delete_function(FunctionName=name, Qualifier=v),
                                   "ResourceConflictException", 409)
        self.assertEqual(self.versions(name), ["$LATEST", "1", "2", "3"])
        self.lam.delete_function(FunctionName=name, Qualifier="2")
        self.assertEqual(self.versions(name), ["$LATEST", "1", "3"])

    def test_routing_weights_split_traffic(self):
        name, _ = self.create_function(harness.c_bootstrap_zip(), "provided.al2023", "bootstrap.handler")
        self.lam.publish_version(FunctionName=name)
        self.lam.update_function_configuration(FunctionName=name, Description="second")
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        self.lam.publish_version(FunctionName=name)
        weight = 0.3
        alias = self.lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                                      RoutingConfig={"AdditionalVersionWeights": {"2": weight}})
        self.assertEqual(alias["RoutingConfig"]["AdditionalVersionWeights"], {"2": weight})
        total, threads = 10000, 6
        counts, errors, lock = collections.Counter(), [], threading.Lock()

        def run(n):
            lam, mine = self.server.client(), collections.Counter()
            for _ in range(n):
                try:
                    r = lam.invoke(FunctionName=name, Qualifier="canary", Payload=b'{"k":1}')
                    r["Payload"].read()
                    mine[r["ExecutedVersion"] + ("!" if "FunctionError" in r else "")] += 1
                except Exception as e:  # counted below
                    errors.append(repr(e))
            with lock:
                counts.update(mine)
        started = time.monotonic()
        pool = [threading.Thread(target=run, args=(total // threads + (i < total % threads),))
                for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(120)
        elapsed = time.monotonic() - started
        self.assertEqual(errors[:3], [])
        self.assertEqual(sum(counts.values()), total, counts)
        self.assertEqual(set(counts), {"1", "2"}, counts)
        share = counts["2"] / total
        self.assertLess(abs(share - weight), 0.02, "split %r in %.1fs" % (counts, elapsed))
        print("routing: %r in %.1fs" % (dict(counts), elapsed))


    # ------------------------------------------------------------ states and updates

    def test_states_and_waiters(self):
        name = harness.unique_name("states")
        created = self.lam.create_function(FunctionName=name, Runtime=PY, Role=harness.ROLE,
                                           Handler=HANDLER, Code={"ZipFile": marked_zip("a")})
        self.assertEqual((created["State"], created["StateReasonCode"], created["LastUpdateStatus"]),
                         ("Pending", "Creating", "InProgress"), created)
        self.lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual((cfg["State"], cfg["LastUpdateStatus"]), ("Active", "Successful"))

        updated = self.lam.update_function_code(FunctionName=name, ZipFile=marked_zip("b"))
        self.assertEqual((updated["State"], updated["LastUpdateStatus"]), ("Active", "InProgress"))
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        self.assertEqual(self.invoke(name)[1]["mark"], "b")

        # Init fails: the waiter sees Failed, the reason is reported, b keeps serving.
        self.lam.update_function_code(FunctionName=name, ZipFile=harness.python_zip(FAILING_INIT % "x1"))
        with self.assertRaises(botocore.exceptions.WaiterError):
            self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual((cfg["State"], cfg["LastUpdateStatus"]), ("Active", "Failed"), cfg)
        self.assertEqual(cfg["LastUpdateStatusReasonCode"], "FunctionError.RuntimeInitError", cfg)
        self.assertIn("init refuses: x1", cfg["LastUpdateStatusReason"])
        self.assertEqual(self.invoke(name)[1]["mark"], "b")
        # A later good update recovers.
        self.update_code(name, marked_zip("c"))
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual(cfg["LastUpdateStatus"], "Successful")
        self.assertNotIn("LastUpdateStatusReasonCode", cfg)
        self.assertEqual(self.invoke(name)[1]["mark"], "c")
        v = self.lam.publish_version(FunctionName=name)
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=v["Version"], WaiterConfig=FAST_WAIT)

    def test_update_while_one_is_in_progress_conflicts(self):
        name = self.new_function("a")
        slow = harness.python_zip(SLOW_INIT % (3, "slow"))
        first = self.lam.update_function_code(FunctionName=name, ZipFile=slow)
        self.assertEqual(first["LastUpdateStatus"], "InProgress")
        self.assertClientError(lambda: self.lam.update_function_code(
            FunctionName=name, ZipFile=marked_zip("other")), "ResourceConflictException", 409)
        self.assertClientError(lambda: self.lam.update_function_configuration(
            FunctionName=name, Timeout=30), "ResourceConflictException", 409)
        self.assertClientError(lambda: self.lam.publish_version(FunctionName=name),
                               "ResourceConflictException", 409)
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual((cfg["RevisionId"], cfg["CodeSha256"], cfg["Timeout"]),
                         (first["RevisionId"], harness.code_sha256(slow), 3))
        self.assertEqual(self.invoke(name)[1]["mark"], "a", "the old code serves during the update")
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        self.assertEqual(self.invoke(name)[1]["mark"], "slow")
        self.assertEqual(self.versions(name), ["$LATEST"])

    def test_revision_id_guards_updates(self):
        name = self.new_function("a")
        rev = self.lam.get_function(FunctionName=name)["Configuration"]["RevisionId"]
        stale = rev[:-1] + ("0" if rev[-1] != "0" else "1")
        self.assertClientError(lambda: self.lam.update_function_code(
            FunctionName=name, ZipFile=marked_zip("b"), RevisionId=stale), "PreconditionFailedException", 412)
        self.assertClientError(lambda: self.lam.update_function_configuration(
            FunctionName=name, Timeout=10, RevisionId=stale), "PreconditionFailedException", 412)
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual((cfg["RevisionId"], cfg["Timeout"], cfg["CodeSha256"]),
                         (rev, 3, harness.code_sha256(marked_zip("a"))))
        resp = self.update_code(name, marked_zip("b"), RevisionId=rev)
        self.assertNotEqual(resp["RevisionId"], rev)
        now = self.lam.get_function_configuration(FunctionName=name)["RevisionId"]
        self.assertClientError(lambda: self.lam.update_function_configuration(
            FunctionName=name, Timeout=10, RevisionId=rev), "PreconditionFailedException", 412)
        self.lam.update_function_configuration(FunctionName=name, Timeout=10, RevisionId=now)
        self.lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
        self.assertEqual(self.lam.get_function_configuration(FunctionName=name)["Timeout"], 10)

    # ------------------------------------------------------------ tags

    def test_tags(self):
        name = self.new_function("a", Tags={"team": "kiln"})
        arn = self.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        self.assertEqual(self.lam.list_tags(Resource=arn)["Tags"], {"team": "kiln"})
        self.lam.tag_resource(Resource=arn, Tags={"env": "e2e", "team": "core"})
        self.assertEqual(self.lam.list_tags(Resource=arn)["Tags"], {"team": "core", "env": "e2e"})
        self.assertEqual(self.lam.get_function(FunctionName=name)["Tags"], {"team": "core", "env": "e2e"})
        self.lam.untag_resource(Resource=arn, TagKeys=["team", "absent"])
        self.assertEqual(self.lam.list_tags(Resource=arn)["Tags"], {"env": "e2e"})
        self.assertEqual(self.invoke(name)[1]["mark"], "a", "tagging does not disturb serving")
        missing = arn.replace(name, name + "-gone")
        self.assertClientError(lambda: self.lam.list_tags(Resource=missing), "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.tag_resource(Resource=missing, Tags={"a": "b"}),
                               "ResourceNotFoundException", 404)
        too_many = {"k%d" % i: "v" for i in range(60)}
        self.assertClientError(lambda: self.lam.tag_resource(Resource=arn, Tags=too_many),
                               "InvalidParameterValueException", 400,
                               msg_contains="Number of tags exceeds resource tag limit.")
        self.assertEqual(self.lam.list_tags(Resource=arn)["Tags"], {"env": "e2e"})

    def test_create_with_more_than_50_tags_is_refused_as_aws_does(self):
        # AWS answers 51 tags on CreateFunction as it answers TagResource beyond 50.
        name = harness.unique_name("tags51")
        tags = {"k%d" % i: "v" for i in range(51)}
        self.assertClientError(
            lambda: harness.create_function(self.lam, name, marked_zip("a"), PY, HANDLER, wait=False, Tags=tags),
            "InvalidParameterValueException", 400, msg_contains="Number of tags exceeds resource tag limit.")
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name), "ResourceNotFoundException", 404)
        tags.pop("k50")
        harness.create_function(self.lam, name, marked_zip("a"), PY, HANDLER, Tags=tags)
        self.assertEqual(len(self.lam.get_function(FunctionName=name)["Tags"]), 50)


if __name__ == "__main__":
    harness.main()
