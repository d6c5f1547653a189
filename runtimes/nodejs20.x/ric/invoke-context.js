// The context object of one invoke, and its completion functions, with the semantics
// of Lambda's Node.js runtime: callback(err, result) waits for an empty event loop
// unless context.callbackWaitsForEmptyEventLoop is false; context.succeed/fail/done
// complete at once; only the first completion of an invoke counts.
'use strict';

// Per-sandbox values, read once (a restored copy renames its log stream: adoptCopyIdentity).
const environmentData = ({
  functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
  logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
});

// SnapStart: what differs per restored copy comes with Kiln's /restore/next answer (its
// log stream; the snapshot holds the snapshotted sandbox's).
function adoptCopyIdentity(headers) {
  const stream = headers && headers['kiln-log-stream-name'];
  if (stream) {
    process.env.AWS_LAMBDA_LOG_STREAM_NAME = stream;
    environmentData.logStreamName = stream;
  }
}

// One listener on process 'beforeExit' (the event loop ran empty), reset per invoke.
const beforeExit = {
  fn: () => {},
  set(fn) {
    this.fn = fn;
  },
  reset() {
    this.fn = () => {};
  },
};
process.on('beforeExit', () => beforeExit.fn());

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

// complete(result) posts a response, fail(err) posts an error; this module calls one of
// them at most once per invoke. Returns [callback, context].
function build(headers, complete, fail) {
  let completed = false;
  let waitForEmptyEventLoop = true;
  const finish = (err, result) => {
    beforeExit.reset();
    if (completed) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    completed = true;
    if (err !== undefined && err !== null) fail(err);
    else complete(result);
  };
  const onlyFirstCall = (fn) => {
    let called = false;
    return (...args) => {
      if (called) return;
      called = true;
      fn(...args);
    };
  };
  const callback = onlyFirstCall((err, result) => {
    beforeExit.reset();
    if ((err !== undefined && err !== null) || !waitForEmptyEventLoop) {
      finish(err, result);
    } else {
      beforeExit.set(() => setImmediate(() => finish(null, result)));
    }
  });
  const deadline = parseInt(headers['lambda-runtime-deadline-ms'], 10);
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitForEmptyEventLoop = value;
    },
    succeed: onlyFirstCall((result) => finish(null, result)),
    fail: onlyFirstCall((err) => finish(err === undefined || err === null ? 'handled' : err, null)),
    done: onlyFirstCall((err, result) => finish(err, result)),
    ...environmentData,
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    getRemainingTimeInMillis() {
      return deadline - Date.now();
    },
  };
  // With no completion at all, an empty event loop completes the invoke with null.
  beforeExit.set(() => finish(null, null));
  return [callback, context];
}

module.exports = {build, beforeExit, adoptCopyIdentity};
