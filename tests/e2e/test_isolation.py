"""Attacks from inside a sandbox (jail backend): nothing of the host or of another
sandbox is reachable. Skipped with KILN_SANDBOX_BACKEND=process (no isolation there)."""
import json
import os
import unittest

import harness

PROBE = r'''
import ctypes, errno, os, socket, uuid

def attempt(fn):
    try:
        r = fn()
        return "ok" if r is None else r
    except OSError as e:
        return "%s:%s" % (type(e).__name__, errno.errorcode.get(e.errno, e.errno))

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.close()

def write(path):
    with open(path, "w") as f:
        f.write("x")

def libc_call(name, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    rc = getattr(libc, name)(*args)
    return "ok" if rc == 0 else "errno:%s" % errno.errorcode.get(ctypes.get_errno(), "?")

def handler(event, context):
    a = event.get("action")
    if a == "probe":
        return {
            "data_dir": attempt(lambda: os.listdir(event["data_dir"])),
            "shadow": attempt(lambda: open("/etc/shadow").read()[:10]),
            "proc_pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
            "api_port": attempt(lambda: connect(event["api_port"])),
            "write_usr": attempt(lambda: write("/usr/kiln-e2e-pwn")),
            "write_etc": attempt(lambda: write("/etc/kiln-e2e-pwn")),
            "write_root": attempt(lambda: write("/kiln-e2e-pwn")),
            "unshare": libc_call("unshare", 0x10000000),          # CLONE_NEWUSER
            "mount": libc_call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
            "uid": os.getuid(),
        }
    if a == "plant":
        write("/tmp/planted-" + event["tag"])
        return sorted(os.listdir("/tmp"))
    if a == "look":
        return sorted(os.listdir("/tmp"))
    if a == "exit":
        os._exit(1)
    if a == "eat":
        chunks = []
        for _ in range(event["mb"]):
            chunks.append(bytearray(1024 * 1024))
            chunks[-1][::4096] = b"x" * len(chunks[-1][::4096])
        return len(chunks)
    return "?"
'''


@unittest.skipUnless(harness.is_jailed(), "process backend has no isolation")
class SandboxIsolationTest(harness.KilnTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.zip = harness.python_zip(PROBE)
        cls.fn, _ = harness.KilnTestCase.create_function(cls, cls.zip, "python3.11",
                                                         "lambda_function.handler")

    def call(self, event, name=None):
        resp = self.lam.invoke(FunctionName=name or self.fn, Payload=json.dumps(event).encode())
        return resp, json.loads(resp["Payload"].read())

    def test_host_is_out_of_reach(self):
        resp, out = self.call({"action": "probe", "data_dir": os.path.abspath(self.server.data_dir),
                               "api_port": self.server.port})
        self.assertNotIn("FunctionError", resp, repr(out))
        self.assertNotEqual(out["data_dir"], "ok", "Kiln's data dir visible: %r" % out)
        self.assertIsInstance(out["data_dir"], str)
        self.assertNotEqual(out["shadow"], "ok", "/etc/shadow readable")
        self.assertTrue(out["shadow"].startswith(("FileNotFoundError", "PermissionError")), out)
        self.assertLess(out["proc_pids"], 16, "host processes visible in /proc: %r" % out)
        self.assertNotEqual(out["api_port"], "ok", "sandbox reached Kiln's API port")
        for k in ("write_usr", "write_etc", "write_root"):
            self.assertNotEqual(out[k], "ok", k)
        self.assertNotEqual(out["unshare"], "ok", "unshare(CLONE_NEWUSER) allowed")
        self.assertNotEqual(out["mount"], "ok", "mount allowed")
        for p in ("/usr/kiln-e2e-pwn", "/etc/kiln-e2e-pwn", "/kiln-e2e-pwn"):
            self.assertFalse(os.path.exists(p), p)

    def test_tmp_not_shared_between_functions(self):
        other, _ = self.create_function(self.zip, "python3.11", "lambda_function.handler")
        _, listing = self.call({"action": "plant", "tag": "a"})
        self.assertIn("planted-a", listing)
        _, theirs = self.call({"action": "look"}, name=other)
        self.assertNotIn("planted-a", theirs, "/tmp shared between functions")
        self.assertFalse(os.path.exists("/tmp/planted-a"), "sandbox /tmp is the host's /tmp")

    def test_fresh_sandbox_gets_empty_tmp(self):
        name, _ = self.create_function(self.zip, "python3.11", "lambda_function.handler")
        self.call({"action": "plant", "tag": "b"}, name=name)
        resp, _ = self.call({"action": "exit"}, name=name)
        self.assertEqual(resp.get("FunctionError"), "Unhandled")
        _, listing = self.call({"action": "look"}, name=name)
        self.assertNotIn("planted-b", listing, "a new sandbox saw the old sandbox's /tmp")

    def test_memory_limit_enforced(self):
        name, _ = self.create_function(self.zip, "python3.11", "lambda_function.handler",
                                       MemorySize=128)
        resp, out = self.call({"action": "eat", "mb": 400}, name=name)
        self.assertEqual(resp.get("FunctionError"), "Unhandled",
                         "400 MB allocated in a 128 MB function: %r" % out)
        self.assertIn(out.get("errorType"), ("Runtime.OutOfMemory", "Runtime.ExitError",
                                             "MemoryError"), repr(out))
        resp, out = self.call({"action": "look"}, name=name)
        self.assertNotIn("FunctionError", resp, repr(out))


if __name__ == "__main__":
    harness.main()
