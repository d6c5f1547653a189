// Errors of the runtime and their wire shape, as Lambda's Node.js runtime
// (aws-lambda-nodejs-runtime-interface-client): {errorType, errorMessage, trace}.
'use strict';

const util = require('util');

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}

const classes = {
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  UnhandledPromiseRejection,
};
for (const [name, cls] of Object.entries(classes)) {
  cls.prototype.name = `Runtime.${name}`;
}

function isError(value) {
  return (
    util.types.isNativeError(value) ||
    (value && typeof value === 'object' && typeof value.name === 'string' &&
      typeof value.message === 'string' && typeof value.stack === 'string')
  );
}

// The body posted to /error and /init/error.
function toRapidResponse(error) {
  try {
    if (isError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: error.stack.split('\n'),
      };
    }
    return {errorType: typeof error, errorMessage: String(error), trace: []};
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(value) {
  if (value instanceof Error) {
    const out = Object.assign(
      {errorType: value.name, errorMessage: value.message, code: value.code}, value);
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  }
  return value;
}

// The log form: "\t" + JSON with the error's own enumerable properties.
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

module.exports = {...classes, toRapidResponse, toFormatted};
