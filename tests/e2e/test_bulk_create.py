"""Bulk creates under a small host memory (issue 10): several threads create functions
at once with --sandbox-memory-mb 256 (two 128 MB sandboxes); their initializations queue
and wait for room instead of failing, and every function becomes Active with
LastUpdateStatus Successful, as boto3's function_active_v2 waiter expects."""
import concurrent.futures
import json

import harness

PY = "python3.11"
HANDLER = "lambda_function.handler"
# A slow init keeps sandboxes warming, so that creates overlap whatever the machine's pace.
SOURCE = '''
import time
time.sleep(0.5)
MARK = %r
def handler(event, context):
    return {"mark": MARK}
'''


class BulkCreateTest(harness.KilnTestCase):
    server_kwargs = {"extra_args": ["--sandbox-memory-mb", "256"]}

    def test_concurrent_creates_all_become_active(self):
        names = [harness.unique_name("bulk%d" % i) for i in range(12)]

        def create(i):
            lam = self.server.client()
            lam.create_function(FunctionName=names[i], Runtime=PY, Handler=HANDLER, Role=harness.ROLE,
                                MemorySize=128, Code={"ZipFile": harness.python_zip(SOURCE % names[i])})
            lam.get_waiter("function_active_v2").wait(FunctionName=names[i],
                                                      WaiterConfig={"Delay": 1, "MaxAttempts": 240})
            return lam.get_function_configuration(FunctionName=names[i])

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            configs = list(pool.map(create, range(len(names))))
        for c in configs:
            self.assertEqual(c["State"], "Active", c)
            self.assertEqual(c["LastUpdateStatus"], "Successful", c)
            self.assertNotIn("StateReasonCode", c)
        # Every one of them runs.
        for n in names:
            resp = self.lam.invoke(FunctionName=n, Payload=b"{}")
            self.assertNotIn("FunctionError", resp)
            self.assertEqual(json.loads(resp["Payload"].read())["mark"], n)


if __name__ == "__main__":
    harness.main()
