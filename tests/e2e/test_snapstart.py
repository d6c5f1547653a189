"""SnapStart end to end (issue 11): published versions start by restoring a snapshot.

Driven by boto3 against a real `kiln serve` with the jail backend (snapshots need it:
skipped with the process backend).
"""
import base64
import concurrent.futures
import json
import os
import re
import threading
import time
import unittest

import harness
from harness import KilnTestCase, python_zip, node_zip, wait_until

PY_HOOKS = r'''
import os, random, secrets, time, uuid
from snapshot_restore_py import register_before_snapshot, register_after_restore

INIT_RANDOM = random.random()          # computed at init: shared by every copy
with open("/tmp/init.txt", "w") as f:  # /tmp written during init travels with the snapshot
    f.write("written at init")
BLOB = bytearray(os.urandom(1024)) * 1024  # 1 MiB of init state
STATE = {"before": 0, "after": 0, "invokes": 0, "first": None}

@register_before_snapshot
def before():
    STATE["before"] += 1
    if os.environ.get("FAIL_BEFORE") == "1":
        raise RuntimeError("before-snapshot hook refused")

@register_after_restore
def after():
    STATE["after"] += 1
    STATE["first"] = {"random": random.random(), "uuid": str(uuid.uuid4()), "token": secrets.token_hex(16)}

def handler(event, context):
    STATE["invokes"] += 1
    if event.get("exit"):
        os._exit(0)
    if event.get("sleep"):
        time.sleep(event["sleep"])
    with open("/tmp/init.txt") as f:
        init_text = f.read()
    return {"before": STATE["before"], "after": STATE["after"], "invokes": STATE["invokes"],
            "first": STATE["first"], "init_random": INIT_RANDOM, "init_text": init_text,
            "init_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
            "stream": context.log_stream_name, "request": context.aws_request_id,
            "blob": len(BLOB), "pid": os.getpid()}
'''


def tail_of(resp):
    return base64.b64decode(resp.get("LogResult", "")).decode("utf-8", "replace")


@unittest.skipUnless(harness.is_jailed(), "snapshots need the jail backend")
class PythonSnapStartTest(KilnTestCase):

    def publish(self, name, **kw):
        v = self.lam.publish_version(FunctionName=name, **kw)
        return v

    def wait_version(self, name, version, timeout=120):
        waiter = self.lam.get_waiter("published_version_active")
        waiter.wait(FunctionName=name, Qualifier=version,
                    WaiterConfig={"Delay": 1, "MaxAttempts": timeout})
        return self.lam.get_function_configuration(FunctionName=name, Qualifier=version)

    def invoke(self, name, qualifier, event=None, tail=False):
        kw = {"LogType": "Tail"} if tail else {}
        r = self.lam.invoke(FunctionName=name, Qualifier=qualifier,
                            Payload=json.dumps(event or {}).encode(), **kw)
        body = r["Payload"].read()
        return r, json.loads(body) if body else None

    def make(self, **kw):
        return self.create_function(python_zip(PY_HOOKS), "python3.11", "lambda_function.handler",
                                    SnapStart={"ApplyOn": "PublishedVersions"}, **kw)

    def test_publish_restore_hooks_tmp_and_report(self):
        name, created = self.make()
        self.assertEqual(created["SnapStart"], {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"})
        v = self.publish(name)
        self.assertIn(v["State"], ("Pending", "Active"))
        cfg = self.wait_version(name, v["Version"])
        self.assertEqual(cfg["State"], "Active", cfg)
        self.assertEqual(cfg["SnapStart"], {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"})
        r, out = self.invoke(name, v["Version"], tail=True)
        self.assertNotIn("FunctionError", r, out)
        # The before-snapshot hook ran once, before the snapshot; after-restore once here.
        self.assertEqual((out["before"], out["after"], out["invokes"]), (1, 1, 1), out)
        self.assertEqual(out["init_text"], "written at init")
        self.assertEqual(out["init_type"], "snap-start")
        self.assertEqual(out["blob"], 1 << 20)
        log = tail_of(r)
        self.assertRegex(log, r"Restore Duration: [0-9.]+ ms\tBilled Restore Duration: [0-9]+ ms")
        self.assertNotIn("Init Duration", log)
        # Warm: same copy, hooks not run again.
        r2, out2 = self.invoke(name, v["Version"], tail=True)
        self.assertEqual((out2["before"], out2["after"], out2["invokes"]), (1, 1, 2), out2)
        self.assertNotIn("Restore Duration", tail_of(r2))
        # $LATEST never restores: it initializes as on demand.
        r3, out3 = self.invoke(name, "$LATEST")
        self.assertEqual(out3["init_type"], "on-demand")
        self.assertEqual(out3["after"], 0)

    def test_fifty_copies_are_unique(self):
        name, _ = self.make(MemorySize=128, Timeout=30)
        v = self.publish(name)["Version"]
        self.wait_version(name, v)
        n = 50

        def one(_):
            return self.invoke(name, v, {"sleep": 3})[1]

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            outs = list(pool.map(one, range(n)))
        firsts = [o["first"] for o in outs]
        self.assertEqual(len({o["stream"] for o in outs}), n, "each copy has its own log stream")
        self.assertEqual(len({o["request"] for o in outs}), n)
        for key in ("random", "uuid", "token"):
            values = {f[key] for f in firsts}
            self.assertEqual(len(values), n, "%s repeated across restored copies: %r" % (key, firsts))
        # What init computed is the snapshot's: the same in every copy (only hooks fix it).
        self.assertEqual(len({o["init_random"] for o in outs}), 1)
        ids = {s["Id"] for s in harness.sandboxes(self.server, name)}
        self.assertGreaterEqual(len(ids), n)

    def test_pending_version_is_refused_and_failed_hook_keeps_previous(self):
        name, _ = self.make(Timeout=30)
        good = self.publish(name)["Version"]
        self.wait_version(name, good)
        self.lam.create_alias(FunctionName=name, Name="live", FunctionVersion=good)
        stop = threading.Event()
        errors, answers = [], [0]

        def load():
            while not stop.is_set():
                try:
                    r, out = self.invoke(name, "live")
                    if "FunctionError" in r:
                        errors.append(out)
                    answers[0] += 1
                except Exception as e:  # noqa: BLE001 - every failure counts
                    errors.append(repr(e))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            self.lam.update_function_configuration(FunctionName=name,
                                                   Environment={"Variables": {"FAIL_BEFORE": "1"}})
            harness.wait_active(self.lam, name)
            bad = self.publish(name)
            if bad["State"] == "Pending":
                # Lambda refuses invokes of a version that is not Active yet.
                try:
                    self.lam.invoke(FunctionName=name, Qualifier=bad["Version"], Payload=b"{}")
                except self.lam.exceptions.ResourceConflictException:
                    pass
            cfg = wait_until(lambda: (lambda c: c if c["State"] != "Pending" else None)(
                self.lam.get_function_configuration(FunctionName=name, Qualifier=bad["Version"])),
                "bad version settles", timeout=120)
            self.assertEqual(cfg["State"], "Failed", cfg)
            self.assertEqual(cfg["StateReasonCode"], "FunctionError", cfg)
            self.assertIn("before-snapshot hook refused", cfg["StateReason"])
            self.assertClientError(
                lambda: self.lam.invoke(FunctionName=name, Qualifier=bad["Version"], Payload=b"{}"),
                "ResourceConflictException", 409)
            time.sleep(1)  # the alias keeps serving the good version meanwhile
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(errors, [])
        self.assertGreater(answers[0], 0)

    def test_provisioned_concurrency_restores_too(self):
        name, _ = self.make()
        v = self.publish(name)["Version"]
        self.wait_version(name, v)
        self.lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=v,
                                                    ProvisionedConcurrentExecutions=3)
        wait_until(lambda: self.lam.get_provisioned_concurrency_config(
            FunctionName=name, Qualifier=v)["Status"] == "READY", "provisioned READY", timeout=120)
        # A restored process's executable stays Kiln's restorer (/proc/PID/exe names it).
        restored = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    if os.readlink("/proc/%s/exe" % p).endswith("/.kiln/restore"):
                        restored.append(p)
                except OSError:
                    pass
        self.assertGreaterEqual(len(restored), 3)
        r, out = self.invoke(name, v, tail=True)
        self.assertEqual((out["before"], out["after"], out["invokes"]), (1, 1, 1), out)
        self.assertNotIn("Init Duration", tail_of(r))

    def test_delete_version_deletes_its_snapshot(self):
        name, _ = self.make()
        v = self.publish(name)["Version"]
        self.wait_version(name, v)
        snaps = os.path.join(self.server.data_dir, "snapshots")
        before = set(os.listdir(snaps))
        self.assertTrue(before)
        st = os.stat(snaps)
        self.assertEqual(st.st_mode & 0o777, 0o700)
        for d in before:
            for f in os.listdir(os.path.join(snaps, d)):
                mode = os.stat(os.path.join(snaps, d, f)).st_mode & 0o777
                self.assertEqual(mode & 0o077, 0, "%s/%s is readable by others" % (d, f))
        self.lam.delete_function(FunctionName=name, Qualifier=v)
        wait_until(lambda: len(set(os.listdir(snaps))) < len(before), "snapshot deleted")


@unittest.skipUnless(harness.is_jailed(), "snapshots need the jail backend")
class SnapStartRestartTest(KilnTestCase):

    def test_kill9_restart_restores_existing_snapshots(self):
        name, _ = self.create_function(python_zip(PY_HOOKS), "python3.11", "lambda_function.handler",
                                       SnapStart={"ApplyOn": "PublishedVersions"})
        v = self.lam.publish_version(FunctionName=name)["Version"]
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=v, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        self.server.kill9()
        self.server.start()
        self.lam = self.server.client()
        r = self.lam.invoke(FunctionName=name, Qualifier=v, LogType="Tail", Payload=b"{}")
        out = json.loads(r["Payload"].read())
        self.assertEqual((out["before"], out["after"]), (1, 1), out)
        self.assertIn("Restore Duration", tail_of(r))


NODE_HOOKS = r"""
const fs = require('fs');
const crypto = require('crypto');
const {registerBeforeSnapshot, registerAfterRestore} = require('kiln-snapstart');
const INIT_RANDOM = Math.random();
fs.writeFileSync('/tmp/init.txt', 'written at init');
const state = {before: 0, after: 0, invokes: 0, first: null};
registerBeforeSnapshot(() => { state.before += 1; });
registerAfterRestore(() => {
  state.after += 1;
  state.first = {random: Math.random(), uuid: crypto.randomUUID(), bytes: crypto.randomBytes(16).toString('hex')};
});
exports.handler = async (event, context) => {
  state.invokes += 1;
  if (event.exit) process.exit(0);
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep * 1000));
  return {before: state.before, after: state.after, invokes: state.invokes, first: state.first,
          init_random: INIT_RANDOM, init_text: fs.readFileSync('/tmp/init.txt', 'utf8'),
          init_type: process.env.AWS_LAMBDA_INITIALIZATION_TYPE, stream: context.logStreamName,
          request: context.awsRequestId};
};
"""


@unittest.skipUnless(harness.is_jailed(), "snapshots need the jail backend")
class NodeSnapStartTest(KilnTestCase):

    def test_restore_hooks_and_fifty_unique_copies(self):
        name, _ = self.create_function(node_zip(NODE_HOOKS), "nodejs20.x", "index.handler",
                                       SnapStart={"ApplyOn": "PublishedVersions"}, Timeout=30)
        v = self.lam.publish_version(FunctionName=name)["Version"]
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=v, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        r = self.lam.invoke(FunctionName=name, Qualifier=v, LogType="Tail", Payload=b"{}")
        out = json.loads(r["Payload"].read())
        self.assertNotIn("FunctionError", r, out)
        self.assertEqual((out["before"], out["after"], out["invokes"]), (1, 1, 1), out)
        self.assertEqual(out["init_text"], "written at init")
        self.assertEqual(out["init_type"], "snap-start")
        self.assertRegex(tail_of(r), r"Restore Duration: [0-9.]+ ms")
        n = 50

        def one(_):
            resp = self.lam.invoke(FunctionName=name, Qualifier=v, Payload=json.dumps({"sleep": 3}).encode())
            return json.loads(resp["Payload"].read())

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            outs = list(pool.map(one, range(n)))
        copies = [o for o in outs if o["invokes"] == 1]  # first invokes of restored copies
        self.assertGreaterEqual(len(copies), n - 1)
        self.assertEqual(len({o["stream"] for o in copies}), len(copies))
        for key in ("random", "uuid"):
            values = {o["first"][key] for o in copies}
            self.assertEqual(len(values), len(copies), "%s repeated across restored copies" % key)
        # Known gap (README, SnapStart): OpenSSL's DRBG inside node is in the snapshot and
        # reseeds only on a pid change, which a restore keeps: crypto.randomBytes repeats.
        # This assertion records it; it fails once Kiln fixes it, and must then be flipped.
        self.assertEqual(len({o["first"]["bytes"] for o in copies}), 1)


def kiln_pid(server):
    return server.proc.pid


def count_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@unittest.skipUnless(harness.is_jailed(), "snapshots need the jail backend")
class SnapStartLeakTest(KilnTestCase):

    def test_thousand_restores_leak_nothing(self):
        name, _ = self.create_function(python_zip(PY_HOOKS), "python3.11", "lambda_function.handler",
                                       SnapStart={"ApplyOn": "PublishedVersions"})
        v = self.lam.publish_version(FunctionName=name)["Version"]
        self.lam.get_waiter("published_version_active").wait(
            FunctionName=name, Qualifier=v, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        pid = kiln_pid(self.server)

        def cycle():
            # A restored copy answers, then exits: the next invoke restores a new one.
            r = self.lam.invoke(FunctionName=name, Qualifier=v, Payload=b"{}")
            out = json.loads(r["Payload"].read())
            assert out["after"] == 1 and out["invokes"] == 1, out
            self.lam.invoke(FunctionName=name, Qualifier=v, Payload=json.dumps({"exit": True}).encode())

        for _ in range(20):  # warm up caches, pools and allocator
            cycle()
        fds0, rss0 = count_fds(pid), rss_kb(pid)
        for _ in range(int(os.environ.get("KILN_SNAPSTART_RESTORES", "1000"))):
            cycle()
        wait_until(lambda: len(harness.sandboxes(self.server, name)) <= 1, "exited copies reaped")
        self.assertLessEqual(count_fds(pid), fds0 + 8)
        self.assertLess(rss_kb(pid), rss0 + 64 * 1024)
        # No process of a restored sandbox outlives it (a restored process's executable
        # stays the restorer: /proc/PID/exe names it).
        live = len(harness.sandboxes(self.server, name))
        restored = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    if os.readlink("/proc/%s/exe" % p).endswith("/.kiln/restore"):
                        restored.append(p)
                except OSError:
                    pass
        self.assertLessEqual(len(restored), live, restored)


if __name__ == "__main__":
    unittest.main()
