// Kiln's SnapStart runtime hooks for Node.js (Lambda has no SnapStart for Node; this is
// Kiln's equivalent of Python's snapshot_restore_py):
//
//   const {registerBeforeSnapshot, registerAfterRestore} = require('kiln-snapstart');
//   registerBeforeSnapshot(async () => { await pool.end(); });
//   registerAfterRestore(connect, 'db');          // connect('db') after each restore
//
// Each call registers fn(...args) and returns fn. The nodejs20.x runtime runs the hooks
// only when the function is initialized for a snapshot (AWS_LAMBDA_INITIALIZATION_TYPE
// =snap-start): the before-snapshot hooks once, after the handler's module is loaded,
// in reverse order of registration; the after-restore hooks once in each sandbox
// restored from the snapshot, in order of registration, before its first invoke. A hook
// may return a promise: the next one starts when it settles. The module resolves from
// CommonJS code (the runtime puts its folder on NODE_PATH); ES modules load it with
// createRequire(import.meta.url)('kiln-snapstart').
'use strict';

const beforeSnapshot = [];
const afterRestore = [];

function check(fn) {
  if (typeof fn !== 'function') throw new TypeError('a SnapStart hook must be a function');
  return fn;
}

function registerBeforeSnapshot(fn, ...args) {
  beforeSnapshot.push({fn: check(fn), args});
  return fn;
}

function registerAfterRestore(fn, ...args) {
  afterRestore.push({fn: check(fn), args});
  return fn;
}

// The registered hooks as {fn, args}, in order of registration (for the runtime).
function getBeforeSnapshot() {
  return beforeSnapshot.slice();
}

function getAfterRestore() {
  return afterRestore.slice();
}

module.exports = {registerBeforeSnapshot, registerAfterRestore, getBeforeSnapshot, getAfterRestore};
