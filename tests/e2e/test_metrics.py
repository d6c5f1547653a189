"""GET /metrics: Prometheus text format, checked with prometheus_client's parser (Debian
python3-prometheus-client) and a strict line grammar of the format's rules, after real
invokes through boto3."""
import http.client
import json
import math
import re
import sys
import unittest

try:
    import prometheus_client.parser as prom_parser
except ImportError:  # the pyenv Python: use Debian's copy (pure Python)
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import prometheus_client.parser as prom_parser
    except ImportError:
        prom_parser = None

import functions
import harness

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)"
SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?\})? (%s)$" % (METRIC_NAME, LABEL, LABEL, VALUE))


def strict_check(text):
    """The text format's rules: HELP/TYPE once per family, before its samples; samples of
    a family together; valid names, labels and values; histograms cumulative with +Inf
    equal to _count. Returns {family: type}."""
    assert text.endswith("\n"), "exposition must end with a newline"
    types, seen_samples, finished = {}, set(), set()
    current = None
    for line in text.split("\n")[:-1]:
        if line.startswith("# "):
            parts = line.split(" ", 3)
            assert parts[1] in ("HELP", "TYPE"), line
            name = parts[2]
            assert re.fullmatch(METRIC_NAME, name), line
            if parts[1] == "TYPE":
                assert name not in types, "TYPE twice for %s" % name
                assert name not in seen_samples, "TYPE after samples for %s" % name
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                types[name] = parts[3]
            if current != name:
                assert name not in finished, "family %s split" % name
                if current:
                    finished.add(current)
                current = name
            continue
        assert line, "blank lines are not allowed here"
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in types \
            else name
        assert family in types, "sample without TYPE: %r" % line
        assert family == current, "sample of %s outside its family block" % family
        seen_samples.add(family)
    return types


def scrape(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        body = r.read().decode()
        return r.status, r.getheader("Content-Type"), body
    finally:
        conn.close()


def samples(text):
    out = {}
    for fam in prom_parser.text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@unittest.skipIf(prom_parser is None, "python3-prometheus-client is not installed (apt install python3-prometheus-client)")
class MetricsTest(harness.KilnTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.fn = harness.create_function(cls.lam, harness.unique_name("metrics"), harness.python_zip(functions.PYTHON),
                                         "python3.11", "lambda_function.handler")["FunctionName"]

    def labels(self, **extra):
        account = self.lam.get_function_configuration(FunctionName=self.fn)["FunctionArn"].split(":")[4]
        d = {"account": account, "function": self.fn, "version": "$LATEST"}
        d.update(extra)
        return tuple(sorted(d.items()))

    def test_invocations_errors_durations_and_host_gauges(self):
        for event in ({"action": "echo", "data": 1}, {"action": "echo", "data": 2}, {"action": "raise"}):
            self.lam.invoke(FunctionName=self.fn, Payload=json.dumps(event).encode())["Payload"].read()
        status, ctype, text = scrape(self.server)
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        types = strict_check(text)
        self.assertEqual(types["kiln_invocations_total"], "counter")
        self.assertEqual(types["kiln_invocation_duration_seconds"], "histogram")
        s = samples(text)
        l = self.labels()
        self.assertEqual(s[("kiln_invocations_total", l)], 3)
        self.assertEqual(s[("kiln_errors_total", l)], 1)
        self.assertEqual(s[("kiln_throttles_total", l)], 0)
        self.assertEqual(s[("kiln_concurrent_executions", l)], 0)
        self.assertEqual(s[("kiln_cold_starts_total", l)] + s[("kiln_warm_starts_total", l)], 3)
        self.assertEqual(s[("kiln_invocation_duration_seconds_count", l)], 3)
        self.assertEqual(s[("kiln_invocation_duration_seconds_bucket", self.labels(le="+Inf"))], 3)
        self.assertGreater(s[("kiln_invocation_duration_seconds_sum", l)], 0)
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in s.items()
                          if k[0] == "kiln_invocation_duration_seconds_bucket" and
                          dict(k[1]).get("function") == self.fn), key=lambda x: x[0])
        self.assertTrue(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets)
        self.assertTrue(math.isinf(buckets[-1][0]))
        self.assertGreaterEqual(s[("kiln_sandboxes", (("state", "idle"),))], 1)
        self.assertGreaterEqual(s[("kiln_memory_reserved_bytes", ())], 128 * 1024 * 1024)
        self.assertGreater(s[("kiln_host_memory_used_bytes", ())], 0)

    def test_metrics_needs_no_signature_and_other_paths_still_do(self):
        status, _, _ = scrape(self.server)
        self.assertEqual(status, 200)
        r = harness.raw_request(self.server, "GET", "/metricsx")
        self.assertNotEqual(r.status, 200)
        r = harness.raw_request(self.server, "POST", "/metrics")
        self.assertNotEqual(r.status, 200)

    def test_strict_checker_rejects_broken_text(self):
        good = "# HELP a_total x\n# TYPE a_total counter\na_total{f=\"1\"} 2\n"
        strict_check(good)
        for bad in ("a_total 1\n",                                          # no TYPE
                    "# TYPE a counter\na{f=\"unterminated} 1\n",            # bad label
                    "# TYPE a counter\na 1\n# TYPE b gauge\nb 1\na 2\n",    # split family
                    "# TYPE a counter\na one\n"):                            # bad value
            with self.assertRaises(AssertionError, msg=bad):
                strict_check(bad)


if __name__ == "__main__":
    harness.main()
