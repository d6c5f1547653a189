"""Tests of the static C echo runtime (tests/fixtures/c_bootstrap) against a fake
Runtime API. Run: KILN_C_BOOTSTRAP=<build>/fixtures/c_bootstrap/bootstrap \\
    /usr/bin/python3 -B runtimes/tests/test_c_bootstrap.py"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "fixtures"))
from runtime_harness import RuntimeProcess  # noqa: E402

BOOTSTRAP = os.environ.get("KILN_C_BOOTSTRAP", "")


def runtime(**kwargs):
    return RuntimeProcess([BOOTSTRAP], "", "/nonexistent", **kwargs)


@unittest.skipUnless(BOOTSTRAP, "set KILN_C_BOOTSTRAP to the built bootstrap")
class CBootstrapTest(unittest.TestCase):
    def test_binary_is_static(self):
        out = subprocess.run(["file", "-L", BOOTSTRAP], capture_output=True, text=True).stdout
        if out:  # `file` may be absent; the dynamic section check below always runs
            self.assertIn("statically linked", out)
        with open(BOOTSTRAP, "rb") as f:
            self.assertNotIn(b"/lib64/ld-linux", f.read(4096))

    def test_echoes_events_byte_for_byte(self):
        with runtime() as rt:
            for event in (b'{"a":1}', b'"\xc3\xa9"', b"{}", b"not even json"):
                result = rt.api.call(event)
                self.assertEqual(result.kind, "response")
                self.assertEqual(result.body, event)

    def test_large_payload(self):
        event = b'{"x":"' + b"y" * (5 * 1024 * 1024) + b'"}'
        with runtime() as rt:
            self.assertEqual(rt.api.call(event, timeout=30).body, event)
            self.assertEqual(rt.api.call(b'{"small":true}').body, b'{"small":true}')

    def test_many_invokes_share_one_keep_alive_connection(self):
        with runtime() as rt:
            for i in range(500):
                body = b'{"i":%d}' % i
                self.assertEqual(rt.api.call(body).body, body)
            self.assertEqual(rt.api.connections, 1)

    def test_chunked_next_response(self):
        with runtime(chunked=True) as rt:
            for size in (1, 10, 100000):
                event = b'"' + b"c" * size + b'"'
                self.assertEqual(rt.api.call(event).body, event)

    def test_reconnects_when_the_server_closes_the_connection(self):
        with runtime(close_after_next=True) as rt:
            for i in range(5):
                body = b'{"i":%d}' % i
                self.assertEqual(rt.api.call(body).body, body)
            self.assertGreaterEqual(rt.api.connections, 5)

    def test_exits_1_without_a_runtime_api_address(self):
        for address in (None, "", "nocolon", "127.0.0.1:notaport", "999.1.1.1:9001"):
            with runtime(env={"AWS_LAMBDA_RUNTIME_API": address}) as rt:
                self.assertEqual(rt.wait_exit(), 1, address)
                self.assertIn("AWS_LAMBDA_RUNTIME_API", rt.output())


if __name__ == "__main__":
    unittest.main()
