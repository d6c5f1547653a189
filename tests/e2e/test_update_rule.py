"""The update rule (issue 5): under continuous sync load, 20 code updates in a row (one
whose init fails) break no invoke, and every response comes from code that was serving at
some moment between the invoke's send and its return.

Serving schedule: v0 serves from the start; a successful update k (made at made_k, seen
Successful at ok_k) switches at some instant in [made_k, ok_k]. So code v_k may answer an
invoke (sent s, returned r) only if made_k <= r and ok_next(k) >= s, where ok_next(k) is
when the next successful update was seen Successful (infinity for the last one). The
failed update's code must never answer.
"""
import json
import os
import subprocess
import threading
import time

import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
UPDATES = 20
FAILING_UPDATE = 10  # this update's code raises at import
LOAD_THREADS = 3

SOURCE = "MARK = %r\ndef handler(event, context):\n    return MARK\n"
FAILING = "raise RuntimeError('update %d refuses to initialize')\ndef handler(e, c):\n    return 'bad'\n"


class UpdateRuleTest(harness.KilnTestCase):
    server_kwargs = {"idle_seconds": 120}  # old sandboxes must go by retirement, not idling

    def sandboxes(self, name):
        env = dict(os.environ, KILN_ACCESS_KEY_ID=harness.TEST_ACCESS_KEY,
                   KILN_SECRET_ACCESS_KEY=harness.TEST_SECRET_KEY)
        out = subprocess.run([harness.kiln_binary(), "sandboxes", "--data-dir", self.server.data_dir,
                              "--endpoint-url", self.server.endpoint, "--function", name, "--json"],
                             env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)["Sandboxes"]

    def wait_update(self, name, timeout=60):
        """Polls LastUpdateStatus; returns (status, configuration, monotonic time seen)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cfg = self.lam.get_function_configuration(FunctionName=name)
            if cfg["LastUpdateStatus"] != "InProgress":
                return cfg["LastUpdateStatus"], cfg, time.monotonic()
            time.sleep(0.02)
        self.fail("update of %s still InProgress after %ss" % (name, timeout))

    def test_twenty_updates_under_load_break_nothing(self):
        name, _ = self.create_function(harness.python_zip(SOURCE % "v0"), PY, HANDLER)
        stop = threading.Event()
        records, failures = [], []  # (sent, returned, mark); failures: descriptions
        running = threading.Event()  # set once an invoke of the load has returned

        def load():
            lam, mine = self.server.client(), []
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    resp = lam.invoke(FunctionName=name, Payload=b"{}")
                    body = json.loads(resp["Payload"].read())
                    returned = time.monotonic()
                    running.set()
                    if "FunctionError" in resp:
                        failures.append("FunctionError %s: %r" % (resp["FunctionError"], body))
                    else:
                        mine.append((sent, returned, body))
                except Exception as e:  # any exception is a failed invoke
                    failures.append(repr(e))
            records.extend(mine)

        threads = [threading.Thread(target=load) for _ in range(LOAD_THREADS)]
        for t in threads:
            t.start()
        updates = []  # (mark, made, seen_done, status)
        try:
            harness.wait_until(lambda: running.is_set() or failures, "the load running before the first update")
            for k in range(1, UPDATES + 1):
                failing = k == FAILING_UPDATE
                code = FAILING % k if failing else SOURCE % ("v%d" % k)
                made = time.monotonic()
                self.lam.update_function_code(FunctionName=name, ZipFile=harness.python_zip(code))
                status, cfg, seen = self.wait_update(name)
                updates.append(("bad" if failing else "v%d" % k, made, seen, status))
                if failing:
                    self.assertEqual(status, "Failed", cfg)
                    self.assertEqual(cfg["LastUpdateStatusReasonCode"], "FunctionError.RuntimeInitError", cfg)
                    self.assertIn("update %d refuses to initialize" % k, cfg["LastUpdateStatusReason"], cfg)
                    resp = self.lam.invoke(FunctionName=name, Payload=b"{}")
                    self.assertNotIn("FunctionError", resp)
                    self.assertEqual(json.loads(resp["Payload"].read()), "v%d" % (k - 1),
                                     "after a failed update the previous code serves")
                else:
                    self.assertEqual(status, "Successful", cfg)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(failures[:5], [], "%d failed invokes" % len(failures))
        self.assertGreater(len(records), 4 * UPDATES, "the load was too thin to prove anything")

        # The serving schedule: mark -> (earliest start, latest end).
        window, previous = {}, "v0"
        window["v0"] = [float("-inf"), float("inf")]
        for mark, made, seen, status in updates:
            if status != "Successful":
                continue
            window[previous][1] = seen
            window[mark] = [made, float("inf")]
            previous = mark
        wrong = []
        for sent, returned, mark in records:
            if mark not in window:
                wrong.append((mark, sent, returned, "never a serving code"))
                continue
            start, end = window[mark]
            if start > returned or end < sent:
                wrong.append((mark, sent, returned, "serving only in [%s, %s]" % (start, end)))
        self.assertEqual(wrong[:5], [], "%d of %d responses from code not serving then"
                         % (len(wrong), len(records)))
        marks = {m for _, _, m in records}
        self.assertIn("v%d" % UPDATES, marks)
        self.assertGreater(len(marks), UPDATES // 2, "the load saw too few versions: %r" % sorted(marks))

        # After the load: GetFunction works, the last code serves, and the replaced
        # configurations' sandboxes are gone (idle reaping is 120 s away, so only
        # retirement can have removed them): at most one per load thread remains.
        self.assertEqual(self.lam.get_function(FunctionName=name)["Configuration"]["LastUpdateStatus"],
                         "Successful")
        deadline, left = time.monotonic() + 10, None
        while time.monotonic() < deadline:
            left = self.sandboxes(name)
            if len(left) <= LOAD_THREADS and all(s["State"] == "idle" for s in left):
                break
            time.sleep(0.2)
        self.assertLessEqual(len(left), LOAD_THREADS, left)
        resp = self.lam.invoke(FunctionName=name, Payload=b"{}")
        self.assertEqual(json.loads(resp["Payload"].read()), "v%d" % UPDATES)
        self.assertLessEqual(len(self.sandboxes(name)), LOAD_THREADS, "a warm sandbox was not reused")
        print("update rule: %d invokes, %d distinct codes seen, %d sandboxes left"
              % (len(records), len(marks), len(left)))


if __name__ == "__main__":
    harness.main()
