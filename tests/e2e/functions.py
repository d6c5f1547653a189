"""Function sources used by the end-to-end tests, one per runtime.

Every function answers the same events, so tests can loop over runtimes:
  {"action": "state"}          -> {"sandbox": id fixed per sandbox, "count": invokes seen}
  {"action": "echo", "data": x} -> x
  {"action": "raise"}           -> handler error (Python ValueError / Node Error / provided
                                   /error with type "Custom.HandlerBoom")
  {"action": "sleep", "seconds": s} -> {"slept": s, "sandbox": id} after s seconds
  {"action": "exit", "code": c} -> the runtime process exits with c
  {"action": "print", "text": t} -> prints t to stdout, returns "printed"
  {"action": "env"}             -> the process environment as a dict
  {"action": "context"}         -> context fields (managed runtimes) / next headers (provided)
  {"action": "fs"}              -> {"task_write": error string or "ok", "tmp": content read back}
  {"action": "big", "size": n}  -> a string of n "x"
"""

PYTHON = r'''
import json, os, sys, time, uuid
SANDBOX = uuid.uuid4().hex
COUNT = 0

def fs():
    root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    try:
        with open(os.path.join(root, "written-by-handler"), "w") as f:
            f.write("x")
        task = "ok"
    except OSError as e:
        task = "%s: %s" % (type(e).__name__, e.errno)
    path = "/tmp/e2e-%s" % uuid.uuid4().hex
    with open(path, "w") as f:
        f.write("tmp-ok")
    with open(path) as f:
        tmp = f.read()
    os.unlink(path)
    return {"task_write": task, "tmp": tmp}

def handler(event, context):
    global COUNT
    COUNT += 1
    action = event.get("action") if isinstance(event, dict) else None
    if action == "echo":
        return event.get("data")
    if action == "raise":
        raise ValueError("boom from python")
    if action == "sleep":
        time.sleep(event["seconds"])
        return {"slept": event["seconds"], "sandbox": SANDBOX}
    if action == "exit":
        sys.stdout.flush()
        os._exit(event.get("code", 3))
    if action == "print":
        print(event["text"])
        return "printed"
    if action == "env":
        return dict(os.environ)
    if action == "context":
        return {"aws_request_id": context.aws_request_id,
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": int(context.memory_limit_in_mb),
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "remaining_ms": context.get_remaining_time_in_millis()}
    if action == "fs":
        return fs()
    if action == "big":
        return "x" * event["size"]
    return {"sandbox": SANDBOX, "count": COUNT, "event": event}
'''

NODE = r'''
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const SANDBOX = crypto.randomUUID();
let COUNT = 0;

function fsCheck() {
  const root = process.env.LAMBDA_TASK_ROOT || "/var/task";
  let task = "ok";
  try { fs.writeFileSync(path.join(root, "written-by-handler"), "x"); }
  catch (e) { task = e.code || String(e); }
  const p = "/tmp/e2e-" + crypto.randomUUID();
  fs.writeFileSync(p, "tmp-ok");
  const tmp = fs.readFileSync(p, "utf8");
  fs.unlinkSync(p);
  return { task_write: task, tmp };
}

exports.handler = async (event, context) => {
  COUNT += 1;
  const action = event && typeof event === "object" ? event.action : undefined;
  switch (action) {
    case "echo": return event.data;
    case "raise": throw new Error("boom from node");
    case "sleep": await new Promise(r => setTimeout(r, event.seconds * 1000));
      return { slept: event.seconds, sandbox: SANDBOX };
    case "exit": process.exit(event.code === undefined ? 3 : event.code);
    case "print": console.log(event.text); return "printed";
    case "env": return Object.assign({}, process.env);
    case "context": return {
      aws_request_id: context.awsRequestId, function_name: context.functionName,
      function_version: context.functionVersion,
      invoked_function_arn: context.invokedFunctionArn,
      memory_limit_in_mb: Number(context.memoryLimitInMB),
      log_group_name: context.logGroupName, log_stream_name: context.logStreamName,
      remaining_ms: context.getRemainingTimeInMillis() };
    case "fs": return fsCheck();
    case "big": return "x".repeat(event.size);
    default: return { sandbox: SANDBOX, count: COUNT, event };
  }
};

exports.callback = (event, context, callback) => {
  if (event && event.action === "raise") return callback(new Error("callback boom"));
  callback(null, { via: "callback", event });
};
'''

# A provided.al2023 runtime: stdlib Python implementing the Runtime API loop itself.
# INIT_MODE=init_error posts /runtime/init/error; INIT_MODE=exit exits before polling.
PROVIDED = r'''#!/usr/bin/python3
import http.client, json, os, sys, time, uuid
API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)
BASE = "/2018-06-01/runtime"
conn = http.client.HTTPConnection(HOST, int(PORT))
SANDBOX = uuid.uuid4().hex
COUNT = 0

def call(method, path, body=None, headers=None):
    conn.request(method, BASE + path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r, r.read()

def error_doc(msg, typ):
    return json.dumps({"errorMessage": msg, "errorType": typ, "stackTrace": []})

mode = os.environ.get("INIT_MODE")
if mode == "init_error":
    call("POST", "/init/error", error_doc("init went wrong", "Custom.InitBoom"),
         {"Lambda-Runtime-Function-Error-Type": "Custom.InitBoom"})
    sys.exit(1)
if mode == "exit":
    sys.exit(7)

while True:
    r, data = call("GET", "/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(data) if data else None
    COUNT += 1
    action = event.get("action") if isinstance(event, dict) else None
    result = None
    if action == "raise":
        call("POST", "/invocation/%s/error" % rid, error_doc("boom from provided", "Custom.HandlerBoom"),
             {"Lambda-Runtime-Function-Error-Type": "Custom.HandlerBoom"})
        continue
    if action == "echo":
        result = event.get("data")
    elif action == "sleep":
        time.sleep(event["seconds"])
        result = {"slept": event["seconds"], "sandbox": SANDBOX}
    elif action == "exit":
        sys.stdout.flush()
        os._exit(event.get("code", 3))
    elif action == "print":
        print(event["text"], flush=True)
        result = "printed"
    elif action == "env":
        result = dict(os.environ)
    elif action == "context":
        result = {k.lower(): v for k, v in r.getheaders() if k.lower().startswith("lambda-runtime-")}
    elif action == "big":
        result = "x" * event["size"]
    else:
        result = {"sandbox": SANDBOX, "count": COUNT, "event": event}
    call("POST", "/invocation/%s/response" % rid, json.dumps(result))
'''

# Runtime name, handler, zip builder for the three families (see harness for zips).
RUNTIMES = {
    "python3.11": ("lambda_function.handler", "python"),
    "nodejs20.x": ("index.handler", "node"),
    "provided.al2023": ("unused.handler", "provided"),
}


def zip_for(runtime):
    import harness
    kind = RUNTIMES[runtime][1]
    if kind == "python":
        return harness.python_zip(PYTHON)
    if kind == "node":
        return harness.node_zip(NODE)
    return harness.provided_zip(PROVIDED)


def handler_for(runtime):
    return RUNTIMES[runtime][0]
