"""The async poller and reserved concurrency (issue 10): with reserved concurrency 1 the
poller keeps one event of the function in flight, a throttle is never counted as an
attempt (approximateInvokeCount stays 1) and nothing is dead-lettered for throttling.
Asserts counts, never speed."""
import json

from async_util import event_runs, recorder_zip, records, send_event, wait_for
from harness import KilnTestCase, main, signed_request


def admin(server, action, args):
    r = signed_request(server, "POST", "/admin/" + action, json.dumps(args), service="kiln",
                       headers={"Content-Type": "application/json"})
    return r.status, (r.json() if r.body else {})


class AsyncReservedConcurrency(KilnTestCase):
    server_kwargs = {"extra_args": ["--async-retry-base-ms", "1500"]}

    def test_reserved_concurrency_one_runs_every_event_once_without_counting_throttles(self):
        name, resp = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        dest, dresp = self.create_function(recorder_zip(), "python3.11", "lambda_function.handler")
        self.lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
        self.lam.put_function_event_invoke_config(
            FunctionName=name, MaximumRetryAttempts=0,
            DestinationConfig={"OnSuccess": {"Destination": dresp["FunctionArn"]},
                               "OnFailure": {"Destination": dresp["FunctionArn"]}})
        ids = ["c%d" % i for i in range(30)]
        for i in ids:
            send_event(self.lam, name, {"id": i, "sleep": 0.1})

        got = wait_for(lambda: (lambda r: r if len(r) >= 30 else None)(records(self.server, dest)),
                       180, "30 destination records")
        runs = event_runs(self.server, name)
        self.assertEqual(sorted(runs), sorted(ids))
        for i in ids:
            self.assertEqual(len(runs[i]), 1, "event %s ran %d times" % (i, len(runs[i])))
        self.assertEqual(len(got), 30)
        for rec in got:
            ctx = rec["requestContext"]
            self.assertEqual(ctx["condition"], "Success", rec)
            self.assertEqual(ctx["approximateInvokeCount"], 1,
                             "a throttled attempt was counted: %r" % (rec,))
        status, out = admin(self.server, "ListDeadLetters", {"FunctionName": name})
        self.assertEqual(status, 200, out)
        self.assertEqual(out.get("DeadLetters"), [])


if __name__ == "__main__":
    main()
