// SnapStart in the nodejs20.x runtime (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start only):
// runs the before-snapshot hooks of kiln-snapstart, calls GET /restore/next (answered
// after a restore), renews the randomness every restored copy would otherwise share,
// then runs the after-restore hooks. A hook that throws or rejects is posted to
// /init/error as Runtime.BeforeSnapshotError (exit 64) or to /restore/error as
// Runtime.AfterRestoreError (exit 65), the error types of Lambda's runtimes.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const Errors = require('./errors.js');
const LogPatch = require('./log-patch.js');

const BEFORE_SNAPSHOT_ERROR = 'Runtime.BeforeSnapshotError';
const AFTER_RESTORE_ERROR = 'Runtime.AfterRestoreError';

async function runHooks(hooks) {
  for (const {fn, args} of hooks) await fn(...args);
}

// 16 bytes from the kernel (never from a generator whose state is in the snapshot).
function kernelSeed() {
  const seed = new Uint32Array(4);
  try {
    const fd = fs.openSync('/dev/urandom', 'r');
    try {
      fs.readSync(fd, new Uint8Array(seed.buffer), 0, 16, null);
    } finally {
      fs.closeSync(fd);
    }
  } catch (_) {
    crypto.randomFillSync(seed);
  }
  if ((seed[0] | seed[1] | seed[2] | seed[3]) === 0) seed[0] = 1;  // xorshift's one bad state
  return seed;
}

// xorshift128+ (V8's Math.random generator) over 32-bit halves, seeded from the kernel:
// doubles in [0, 1) with 53 random bits. V8's own state cannot be reseeded from JS.
function xorshift128plus(seed) {
  let s0h = seed[0] >>> 0;
  let s0l = seed[1] >>> 0;
  let s1h = seed[2] >>> 0;
  let s1l = seed[3] >>> 0;
  return function random() {
    // x = state0, y = state1; state0 = y; x ^= x << 23; x ^= x >>> 17; x ^= y ^ (y >>> 26)
    let xh = s0h;
    let xl = s0l;
    const yh = s1h;
    const yl = s1l;
    s0h = yh;
    s0l = yl;
    xh ^= (xh << 23) | (xl >>> 9);
    xl ^= xl << 23;
    xl ^= (xl >>> 17) | (xh << 15);
    xh ^= xh >>> 17;
    xl ^= yl ^ ((yl >>> 26) | (yh << 6));
    xh ^= yh ^ (yh >>> 26);
    s1h = xh >>> 0;
    s1l = xl >>> 0;
    const lo = (s1l + yl) >>> 0;
    const hi = (s1h + yh + (lo < s1l ? 1 : 0)) >>> 0;
    return (hi * 2097152 + (lo >>> 11)) / 9007199254740992;  // (hi:21 bits | lo:32-11) / 2^53
  };
}

// Uniqueness after a restore: every copy of one snapshot starts with the same memory.
// - Math.random: V8's state is in the snapshot; replaced by a kernel-seeded generator.
// - crypto.randomUUID serves from a batch of 128 UUIDs of random bytes cached in the
//   process, and crypto.randomInt from a 6 KiB cache: draw them both past their next
//   refill, so no copy hands out the rest of the snapshot's batch.
// os-level sources (crypto.randomBytes, getRandomValues) are read when called.
function renewRandomness() {
  Math.random = xorshift128plus(kernelSeed());
  for (let i = 0; i < 128; i++) crypto.randomUUID();
  for (let i = 0; i < 1024; i++) crypto.randomInt(281474976710655);
}

async function reportHookError(post, errorType, error) {
  LogPatch.logError('Uncaught Exception', error);
  try {
    await post(Errors.toRapidResponse(error), errorType);
  } catch (err) {
    process.stderr.write(`kiln runtime: posting the hook error failed: ${err && err.message}\n`);
  }
}

// Resolves when the copy is restored and its hooks ran; exits the process after
// reporting a hook's error. setFatal(handler) routes uncaught errors of the phase.
async function snapStart(client, setFatal) {
  const hooks = require('kiln-snapstart');
  try {
    await runHooks(hooks.getBeforeSnapshot().reverse());
  } catch (error) {
    await reportHookError((r, t) => client.postInitError(r, t), BEFORE_SNAPSHOT_ERROR, error);
    process.exit(64);
  }
  await client.restoreNext();
  renewRandomness();
  setFatal((error) => {
    reportHookError((r, t) => client.postRestoreError(r, t), AFTER_RESTORE_ERROR, error)
      .finally(() => process.exit(65));
  });
  try {
    await runHooks(hooks.getAfterRestore());
  } catch (error) {
    await reportHookError((r, t) => client.postRestoreError(r, t), AFTER_RESTORE_ERROR, error);
    process.exit(65);
  }
}

module.exports = {snapStart, renewRandomness, xorshift128plus, kernelSeed};
