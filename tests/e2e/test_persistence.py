"""Functions and code survive SIGTERM restarts and kill -9; torn uploads leave nothing."""
import base64
import json
import os
import socket
import time
import urllib.request

import functions
import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"


class PersistenceTest(harness.KilnTestCase):

    def setUp(self):
        if not self.server.running():  # a previous test left it down
            self.server.start()
        self.__class__.lam = self.server.client()

    def invoke(self, name, event):
        resp = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
        payload = json.loads(resp["Payload"].read())
        self.assertNotIn("FunctionError", resp, repr(payload))
        return payload

    def assertIntact(self, name, zip_bytes, env=None):
        cfg = self.lam.get_function_configuration(FunctionName=name)
        self.assertEqual(cfg["CodeSha256"], harness.code_sha256(zip_bytes))
        self.assertEqual(cfg["CodeSize"], len(zip_bytes))
        if env is not None:
            self.assertEqual(cfg.get("Environment", {}).get("Variables"), env)
        loc = self.lam.get_function(FunctionName=name)["Code"]["Location"]
        with urllib.request.urlopen(loc, timeout=10) as r:
            self.assertEqual(r.read(), zip_bytes)
        self.assertEqual(self.invoke(name, {"action": "echo", "data": "alive"}), "alive")

    def make_set(self):
        """A python function, an updated node function and a deleted one."""
        py_zip = harness.python_zip(functions.PYTHON)
        py, _ = self.create_function(py_zip, PY, HANDLER, MemorySize=256,
                                     Environment={"Variables": {"KK": "v"}})
        node_zip = functions.zip_for("nodejs20.x")
        node, _ = self.create_function(harness.node_zip("exports.handler = async () => 1;"),
                                       "nodejs20.x", "index.handler")
        self.lam.update_function_code(FunctionName=node, ZipFile=node_zip)
        harness.wait_active(self.lam, node)
        gone, _ = self.create_function(py_zip, PY, HANDLER)
        self.lam.delete_function(FunctionName=gone)
        self.invoke(py, {"action": "state"})  # a warm sandbox exists at the crash
        return (py, py_zip), (node, node_zip), gone

    def check_set(self, fset):
        (py, py_zip), (node, node_zip), gone = fset
        self.assertIntact(py, py_zip, env={"KK": "v"})
        self.assertEqual(self.lam.get_function_configuration(FunctionName=py)["MemorySize"], 256)
        self.assertIntact(node, node_zip)
        self.assertClientError(lambda: self.lam.get_function(FunctionName=gone),
                               "ResourceNotFoundException", 404)
        names = [f["FunctionName"] for f in self.lam.list_functions()["Functions"]]
        self.assertIn(py, names)
        self.assertNotIn(gone, names)

    def test_sigterm_exits_cleanly_and_restart_keeps_functions(self):
        fset = self.make_set()
        rc = self.server.stop()
        self.assertEqual(rc, 0, "kiln serve exit code on SIGTERM:\n" + self.server.log_tail())
        self.assertFalse(harness.port_accepts(self.server.port))
        self.server.start()
        self.__class__.lam = self.server.client()
        self.check_set(fset)

    def test_kill9_keeps_functions_and_code(self):
        fset = self.make_set()
        self.server.kill9()
        self.server.start()
        self.__class__.lam = self.server.client()
        self.check_set(fset)
        # and again, right after a write
        name, _ = self.create_function(harness.python_zip(functions.PYTHON), PY, HANDLER)
        self.server.kill9()
        self.server.start()
        self.__class__.lam = self.server.client()
        self.assertIntact(name, harness.python_zip(functions.PYTHON))

    def torn_create(self, name, zip_bytes, fraction):
        """Send a signed CreateFunction but only `fraction` of its body; return the socket."""
        body = json.dumps({"FunctionName": name, "Runtime": PY, "Role": harness.ROLE,
                           "Handler": HANDLER,
                           "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()}}).encode()
        path = "/2015-03-31/functions"
        headers = harness.sign(self.server, "POST", path, body, {"Content-Type": "application/json"})
        head = "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n" % (
            path, self.server.port, len(body))
        head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(head.encode() + body[: int(len(body) * fraction)])
        return s, body

    def big_zip(self):
        return harness.python_zip(functions.PYTHON, extra={"blob.bin": os.urandom(8 * 1024 * 1024)})

    def test_client_disconnect_mid_upload_leaves_nothing(self):
        name = harness.unique_name("torn")
        s, _ = self.torn_create(name, self.big_zip(), 0.5)
        s.close()
        time.sleep(0.2)
        self.assertServing()
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name),
                               "ResourceNotFoundException", 404)
        # the name is usable
        z = harness.python_zip(functions.PYTHON)
        harness.create_function(self.lam, name, z, PY, HANDLER)
        self.assertIntact(name, z)

    def test_kill9_mid_upload_leaves_no_broken_function(self):
        name = harness.unique_name("tornkill")
        s, _ = self.torn_create(name, self.big_zip(), 0.6)
        self.server.kill9()
        s.close()
        self.server.start()
        self.__class__.lam = self.server.client()
        self.assertClientError(lambda: self.lam.get_function(FunctionName=name),
                               "ResourceNotFoundException", 404)
        z = harness.python_zip(functions.PYTHON)
        harness.create_function(self.lam, name, z, PY, HANDLER)
        self.assertIntact(name, z)

    def test_kill9_right_after_full_upload_is_all_or_nothing(self):
        for attempt in range(3):
            name = harness.unique_name("race%d" % attempt)
            zip_bytes = self.big_zip()
            s, body = self.torn_create(name, zip_bytes, 1.0)
            time.sleep(0.05 * attempt)
            self.server.kill9()
            s.close()
            self.server.start()
            self.__class__.lam = self.server.client()
            try:
                self.lam.get_function_configuration(FunctionName=name)
            except self.lam.exceptions.ResourceNotFoundException:
                continue  # nothing: fine
            harness.wait_active(self.lam, name)
            self.assertIntact(name, zip_bytes)  # something: then all of it

    def test_update_survives_kill9(self):
        z1 = harness.python_zip(functions.PYTHON)
        name, _ = self.create_function(z1, PY, HANDLER)
        z2 = harness.python_zip(functions.PYTHON + "\n# v2\n")
        self.lam.update_function_code(FunctionName=name, ZipFile=z2)
        harness.wait_active(self.lam, name)  # as Lambda, one update at a time
        self.lam.update_function_configuration(FunctionName=name, Timeout=30)
        harness.wait_active(self.lam, name)
        self.server.kill9()
        self.server.start()
        self.__class__.lam = self.server.client()
        self.assertIntact(name, z2)
        self.assertEqual(self.lam.get_function_configuration(FunctionName=name)["Timeout"], 30)


if __name__ == "__main__":
    harness.main()
