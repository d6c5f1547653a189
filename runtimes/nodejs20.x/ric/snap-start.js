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

// Fills `bytes` (a Uint8Array) from the kernel: never from a generator whose state is
// in the snapshot. OpenSSL's DRBG (behind crypto.randomBytes and friends) is such a
// generator: it reseeds on a change of pid, which a restore keeps.
function kernelRandom(bytes) {
  try {
    const fd = fs.openSync('/dev/urandom', 'r');
    try {
      fs.readSync(fd, bytes, 0, bytes.length, null);
    } finally {
      fs.closeSync(fd);
    }
  } catch (_) {
    crypto.randomFillSync(bytes);  // no /dev/urandom in this sandbox: the best there is
  }
  return bytes;
}

function kernelSeed() {
  const seed = new Uint32Array(4);
  kernelRandom(new Uint8Array(seed.buffer));
  if ((seed[0] | seed[1] | seed[2] | seed[3]) === 0) seed[0] = 1;  // xorshift's one bad state
  return seed;
}

const HEX = Array.from({length: 256}, (_, i) => (i + 0x100).toString(16).slice(1));
const UUID_BATCH = 128;

// crypto.randomUUID() from kernel bytes, a batch of 128 per read (as node caches its
// own): RFC 4122 version 4. The options ({disableEntropyCache}) change nothing here.
function kernelRandomUUID() {
  const batch = new Uint8Array(16 * UUID_BATCH);
  let next = UUID_BATCH;
  return function randomUUID() {
    if (next === UUID_BATCH) {
      kernelRandom(batch);
      next = 0;
    }
    const b = batch.subarray(next * 16, next * 16 + 16);
    next++;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    return `${HEX[b[0]]}${HEX[b[1]]}${HEX[b[2]]}${HEX[b[3]]}-${HEX[b[4]]}${HEX[b[5]]}-${HEX[b[6]]}${HEX[b[7]]}-` +
      `${HEX[b[8]]}${HEX[b[9]]}-${HEX[b[10]]}${HEX[b[11]]}${HEX[b[12]]}${HEX[b[13]]}${HEX[b[14]]}${HEX[b[15]]}`;
  };
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
// - crypto.randomUUID (the crypto module's and globalThis.crypto's): replaced by one
//   that reads the kernel. Node's own serves from a batch of 128 UUIDs cached in the
//   process and refills it from OpenSSL, whose state is in the snapshot too.
// - The caches behind references taken during init (const {randomUUID} = require(...))
//   and crypto.randomInt (6 KiB) are drawn past their next refill, so no copy hands out
//   the rest of the snapshot's batch; what they refill with comes from OpenSSL (below).
// Not renewed: OpenSSL's generator itself (crypto.randomBytes, randomFill, randomInt,
// getRandomValues and keys made with them) reseeds on its own schedule only; the
// function's after-restore hooks cannot reseed it either.
function renewRandomness() {
  const nodeRandomUUID = crypto.randomUUID;
  for (let i = 0; i < UUID_BATCH; i++) nodeRandomUUID();
  for (let i = 0; i < 1024; i++) crypto.randomInt(281474976710655);
  Math.random = xorshift128plus(kernelSeed());
  const randomUUID = kernelRandomUUID();
  crypto.randomUUID = randomUUID;
  if (globalThis.crypto && globalThis.crypto.randomUUID) {
    try {
      Object.defineProperty(globalThis.crypto, 'randomUUID', {value: randomUUID, writable: true, configurable: true});
    } catch (_) {
      // a frozen webcrypto object: leave it
    }
  }
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
  require('./invoke-context').adoptCopyIdentity(await client.restoreNext());
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

module.exports = {snapStart, renewRandomness, xorshift128plus, kernelSeed, kernelRandomUUID};
