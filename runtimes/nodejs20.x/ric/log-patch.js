// console.* as Lambda's Node.js runtime writes it to stdout, one record per call.
//
// Text format (the default): "<ISO time>\t<request id>\t<LEVEL>\t<message>\n", newlines in
// the message turned into \r so a multi-line message stays one record.
// JSON format (AWS_LAMBDA_LOG_FORMAT=JSON, set by the worker for LoggingConfig JSON): one
// object per line, {"timestamp", "level", "requestId", "message"}, where message is the
// value itself when the call had one argument (an Error becomes {errorType, errorMessage,
// stackTrace, ...its own enumerable fields}; a value JSON cannot encode becomes its
// util.format string), else the util.format string of all arguments, with errorType,
// errorMessage and stackTrace of the first Error argument beside it. requestId is absent
// before the first invoke.
// AWS_LAMBDA_LOG_LEVEL (TRACE DEBUG INFO WARN ERROR FATAL; unset: TRACE) turns the methods
// below it into no-ops; console.fatal always writes. Format and level are read once, by
// patchConsole(), so no call pays for a choice.
'use strict';

const util = require('util');
const Errors = require('./errors.js');

const LEVELS = Object.freeze({TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6});

let currentRequestId; // undefined until the first invoke, as in Lambda

function setCurrentRequestId(id) {
  currentRequestId = id;
}

function textRecord(level, message, params) {
  const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(message, ...params)}`;
  return line.replace(/\n/g, '\r') + '\n';
}

function errorTypeOf(error) {
  return error?.constructor?.name ?? 'UnknownError';
}

// JSON.stringify replacer: Errors anywhere in a logged value become plain objects.
function errorAsObject(_key, value) {
  if (!(value instanceof Error)) return value;
  return Object.assign({
    errorType: errorTypeOf(value),
    errorMessage: value.message,
    stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
  }, value);
}

function jsonRecord(level, message, params) {
  const record = {timestamp: new Date().toISOString(), level, requestId: currentRequestId};
  if (params.length === 0) {
    record.message = message;
    try {
      return JSON.stringify(record, errorAsObject) + '\n';
    } catch (_) {
      // Circular, BigInt or a throwing toJSON: log what util.format makes of it.
      record.message = util.format(message);
      return JSON.stringify(record) + '\n';
    }
  }
  record.message = util.format(message, ...params);
  const error = [message, ...params].find((p) => p instanceof Error);
  if (error !== undefined) {
    record.errorType = errorTypeOf(error);
    record.errorMessage = error.message;
    record.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  return JSON.stringify(record) + '\n';
}

// format: textRecord or jsonRecord. The returned function writes one record per call.
function logger(level, format) {
  return function (message, ...params) {
    process.stdout.write(format(level, message, params));
  };
}

const noop = () => {};

// What the runtime's own error reports ("Invoke Error", "Uncaught Exception", ...) call:
// Text: console.error(title, "\t" + JSON of the error); JSON: console.error(error) alone.
// Replaced by patchConsole().
let logError = (title, error) => console.error(title, error);

function patchConsole(env = process.env) {
  const json = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const format = json ? jsonRecord : textRecord;
  const minimum = LEVELS[(env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? LEVELS.TRACE;
  const at = (level) => (LEVELS[level] >= minimum ? logger(level, format) : noop);
  console.trace = at('TRACE');
  console.debug = at('DEBUG');
  console.info = at('INFO');
  console.log = console.info;
  console.warn = at('WARN');
  console.error = at('ERROR');
  console.fatal = logger('FATAL', format);
  logError = json
    ? (_title, error) => console.error(error instanceof Error ? error : new Error(error))
    : (title, error) => console.error(title, Errors.toFormatted(error));
}

module.exports = {
  patchConsole,
  setCurrentRequestId,
  logError: (title, error) => logError(title, error),
};
