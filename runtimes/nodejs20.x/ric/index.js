// Kiln's runtime interface client for Node.js 20: loads the handler once (init), then
// loops on /invocation/next, runs the handler (async, callback or context.succeed/
// fail/done style) and posts its result or error as Lambda's Node.js runtime does.
// Init failures go to /init/error and the process exits 129; an uncaught exception or
// unhandled rejection during an invoke fails that invoke and exits 129 / 128.
// SnapStart (snap-start initialization only): see snap-start.js.
'use strict';

const Errors = require('./errors.js');
const InvokeContext = require('./invoke-context.js');
const LogPatch = require('./log-patch.js');
const {RuntimeApiClient} = require('./runtime-api-client.js');
const UserFunction = require('./user-function.js');

// What an uncaught error does: fail init, or fail the current invoke. Then exit.
let onFatal = (error, exitCode) => process.exit(exitCode);

function installProcessHandlers() {
  process.on('uncaughtException', (error) => {
    LogPatch.logError('Uncaught Exception', error);
    onFatal(error, 129);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new Errors.UnhandledPromiseRejection(reason?.toString(), promise);
    LogPatch.logError('Unhandled Promise Rejection', error);
    onFatal(error, 128);
  });
}

// Makes require('kiln-snapstart') resolve from the function's CommonJS code in every
// mode (the same code runs on $LATEST, without snapshots): its folder joins NODE_PATH.
function exposeSnapStartModule() {
  const dir = `${__dirname}/../modules`;
  const current = process.env.NODE_PATH;
  process.env.NODE_PATH = current ? `${current}:${dir}` : dir;
  require('module')._initPaths();
}

function exitOnRuntimeApiFailure(err) {
  process.stderr.write(`kiln runtime: Runtime API failure: ${err && err.stack}\n`);
  process.exit(1);
}

function serializeResult(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch (_) {
    return undefined;
  }
}

class Runtime {
  constructor(client, handler) {
    this.client = client;
    this.handler = handler;
    this.traceId = process.env._X_AMZN_TRACE_ID;
  }

  start() {
    this.handleOnce().catch(exitOnRuntimeApiFailure);
  }

  async handleOnce() {
    const {headers, body} = await this.client.nextInvocation();
    const id = headers['lambda-runtime-aws-request-id'];
    LogPatch.setCurrentRequestId(id);
    this.forwardTraceId(headers['lambda-runtime-trace-id']);
    const next = () => this.start();
    // A failed post fails this invoke only (e.g. the API refused an oversized response
    // and closed the connection): /next reconnects, or ends the process if the API is gone.
    const postFailed = (err) => {
      process.stderr.write(`kiln runtime: posting the result failed: ${err && err.message}\n`);
      next();
    };
    const fail = (err) => {
      LogPatch.logError('Invoke Error', err);
      this.client.postInvocationError(id, Errors.toRapidResponse(err)).then(next, postFailed);
    };
    const complete = (result) => {
      const payload = serializeResult(result);
      if (payload === undefined) return fail(new Error('Unable to stringify response body'));
      this.client.postInvocationResponse(id, payload).then(next, postFailed);
    };
    onFatal = (error, exitCode) => {
      this.client.postInvocationError(id, Errors.toRapidResponse(error))
        .finally(() => process.exit(exitCode));
    };
    let callback;
    let context;
    try {
      [callback, context] = InvokeContext.build(headers, complete, fail);
    } catch (err) {
      InvokeContext.beforeExit.reset();
      return fail(err);
    }
    try {
      const result = this.handler(JSON.parse(body.toString('utf8')), context, callback);
      if (result && typeof result.then === 'function') {
        result.then(context.succeed, context.fail).catch(context.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  forwardTraceId(traceId) {
    if (traceId === this.traceId) return;
    this.traceId = traceId;
    if (traceId === undefined) delete process.env._X_AMZN_TRACE_ID;
    else process.env._X_AMZN_TRACE_ID = traceId;
  }
}

async function run() {
  LogPatch.patchConsole();
  installProcessHandlers();
  exposeSnapStartModule();
  const appRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
  const client = new RuntimeApiClient(process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001');
  try {
    process.chdir(appRoot);
  } catch (_) {
    // Lambda's working directory is the task root; carry on if it is not there.
  }
  onFatal = (error, exitCode) => {
    client.postInitError(Errors.toRapidResponse(error)).finally(() => process.exit(exitCode));
  };
  let handler;
  try {
    handler = await UserFunction.load(appRoot, process.env._HANDLER || '');
  } catch (error) {
    LogPatch.logError('Uncaught Exception', error);
    return onFatal(error, 129);
  }
  if (process.env.AWS_LAMBDA_INITIALIZATION_TYPE === 'snap-start') {
    try {
      // Loaded only for snapshots: the cold path of other sandboxes is unchanged.
      await require('./snap-start.js').snapStart(client, (fatal) => { onFatal = fatal; });
    } catch (err) {
      return exitOnRuntimeApiFailure(err);
    }
  }
  new Runtime(client, handler).start();
}

module.exports = {run};
