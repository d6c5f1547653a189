// console.* in Lambda's text format, one record per call:
// "<ISO time>\t<request id>\t<LEVEL>\t<message>\n", newlines in the message turned
// into \r so a multi-line message stays one record.
'use strict';

const util = require('util');

let currentRequestId; // undefined until the first invoke, as in Lambda

function setCurrentRequestId(id) {
  currentRequestId = id;
}

function logger(level) {
  return function (message, ...params) {
    const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(message, ...params)}`;
    process.stdout.write(line.replace(/\n/g, '\r') + '\n');
  };
}

function patchConsole() {
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  console.fatal = logger('FATAL');
}

module.exports = {patchConsole, setCurrentRequestId};
