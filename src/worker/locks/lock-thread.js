// @ts-check
// Renews the BullMQ locks of the jobs this worker runs, on a thread of its own: the main event
// loop can be held up for seconds when the CPU is saturated, and a lock that lapses meanwhile
// hands a running job to another worker (it then runs twice). A kill -9 stops this thread with
// the process, so a dead worker's locks still lapse after WORKER_LOCK_MS. Plain JavaScript
// (type-checked through JSDoc) for the same reason as inference-thread.js.
import { setInterval } from 'node:timers';
import { parentPort, workerData } from 'node:worker_threads';
import { Cluster, Redis } from 'ioredis';

/** @typedef {import('./lock-protocol.js').LockThreadInit} LockThreadInit */
/** @typedef {import('./lock-protocol.js').LockRequest} LockRequest */
/** @typedef {import('./lock-protocol.js').LockEvent} LockEvent */
/** @typedef {{ jobId: string, token: string }} Held */

// KEYS: active list, stalled set, then the lock key of each job; ARGV: lock ms, then job id and
// token of each job. Per job: 1 renewed; 0 still active but the lock is gone or another's (lost);
// 2 no longer active (finished, retried or removed: nothing to renew). Removing the job from
// the stalled set is what BullMQ's own extendLock does.
const RENEW = `
local out = {}
for i = 3, #KEYS do
  local jobId, token = ARGV[(i - 3) * 2 + 2], ARGV[(i - 3) * 2 + 3]
  if redis.call('GET', KEYS[i]) == token then
    redis.call('SET', KEYS[i], token, 'PX', ARGV[1])
    redis.call('SREM', KEYS[2], jobId)
    out[#out + 1] = 1
  elseif redis.call('LPOS', KEYS[1], jobId) then
    out[#out + 1] = 0
  else
    out[#out + 1] = 2
  end
end
return out
`;

// KEYS: active list, stalled set; ARGV: queue key, lock ms, how many prefixes, the `<workerId>:`
// prefixes, then tokens to leave alone (see `released`). Renews every other active job whose
// lock token starts with one of the prefixes (so it is this worker's) and returns them as job
// id, token pairs. Run only while the worker is late: it reads every active
// job of the queue, but a job Redis gave this worker is locked from then on, while the worker
// learns of it (and holds it) only once its event loop reads the reply: seconds later when the
// CPU is saturated.
const ADOPT = `
local found, skip, n = {}, {}, tonumber(ARGV[3])
for i = 4 + n, #ARGV do skip[ARGV[i]] = true end
for _, jobId in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local lockKey = ARGV[1] .. jobId .. ':lock'
  local token = redis.call('GET', lockKey)
  if token and not skip[token] then
    for i = 4, 3 + n do
      if string.sub(token, 1, #ARGV[i]) == ARGV[i] then
        redis.call('SET', lockKey, token, 'PX', ARGV[2])
        redis.call('SREM', KEYS[2], jobId)
        found[#found + 1] = jobId
        found[#found + 1] = token
        break
      end
    end
  end
end
return found
`;

/** A hold later than this after its fetch, or no beat for this long: the worker is late. */
const LATE_MS = 1500;
/** How long adoption goes on after the worker was last seen late. */
const ADOPT_FOR_MS = 60_000;

/** @type {LockThreadInit} */
const init = workerData; // eslint-disable-line @typescript-eslint/no-unsafe-assignment -- workerData is untyped by Node
const port = parentPort;
if (!port) throw new Error('lock-thread must run as a worker thread');

/** @param {LockEvent} event */
const report = (event) => port?.postMessage(event);

/** @param {number} attempt */
const retryStrategy = (attempt) => Math.min(50 * 2 ** attempt, 1000);

const c = init.connection;
const redis =
  c.kind === 'cluster'
    ? new Cluster(c.nodes, { ...c.options, clusterRetryStrategy: retryStrategy })
    : new Redis(c.url, { ...c.options, retryStrategy });
// Connection errors are retried by ioredis; a failed round is reported below.
redis.on('error', () => undefined);

/** Held jobs by queue key (`<prefix>:<queue>:`), then by job id. @type {Map<string, Map<string, Held>>} */
const held = new Map();
/** Worker ids by queue key. @type {Map<string, Set<string>>} */
const watched = new Map();
/**
 * Tokens adoption leaves alone, until when (two lock periods: their lock has lapsed by then): of
 * holds released as abandoned, and of adoptions the worker never confirmed. @type {Map<string, number>}
 */
const released = new Map();
/**
 * Jobs adopted that no hold has confirmed yet, by token: when adopted, and where. A job Redis
 * gave this worker whose reply was lost (the connection broke as it answered; ioredis sends the
 * fetch again and gets another job) is never run here: its adoption ends after CONFIRM_MS, its
 * lock lapses and BullMQ's stalled check hands it on. @type {Map<string, { at: number, queueKey: string, jobId: string }>}
 */
const unconfirmed = new Map();
/** How long an adopted job may wait for the worker's hold (a late worker's is seconds late). */
const CONFIRM_MS = init.confirmMs ?? Math.max(2 * init.lockMs, 10_000);

/** Keeps adoption off `token` for two lock periods (see `released`). @param {string} token */
function leaveAlone(token) {
  released.set(token, Date.now() + 2 * init.lockMs);
}
/** Alive keys of fast-lane consumers, renewed like the locks. @type {Set<string>} */
const alive = new Set();
let lastBeat = Date.now();
let lateUntil = 0;
/** When the main loop was last seen silent for longer than LATE_MS. */
let silentUntil = 0;
let hungReported = false;
/** Rounds still waiting for Redis; a slow one must not hold the next back (locks would lapse). */
let inFlight = 0;
const MAX_IN_FLIGHT = 3;

/** @param {string} queueKey @param {Held[]} jobs */
async function renewQueue(queueKey, jobs) {
  const keys = [
    `${queueKey}active`,
    `${queueKey}stalled`,
    ...jobs.map((j) => `${queueKey}${j.jobId}:lock`),
  ];
  const args = [String(init.lockMs), ...jobs.flatMap((j) => [j.jobId, j.token])];
  const results = /** @type {number[]} */ (await redis.eval(RENEW, keys.length, ...keys, ...args));
  const queue = held.get(queueKey);
  results.forEach((result, i) => {
    const job = jobs[i];
    if (!job || result === 1) return;
    // Only forget the hold it answered for: the job may have been taken again meanwhile.
    if (queue?.get(job.jobId)?.token === job.token) queue.delete(job.jobId);
    if (result === 0) report({ type: 'lost', queueKey, jobId: job.jobId });
  });
}

/** @param {string} queueKey @param {Set<string>} workerIds */
async function adopt(queueKey, workerIds) {
  const keys = [`${queueKey}active`, `${queueKey}stalled`];
  const prefixes = [...workerIds].map((id) => `${id}:`);
  const now = Date.now();
  const skip = [];
  for (const [token, until] of released) {
    if (until < now) released.delete(token);
    else skip.push(token);
  }
  const found = /** @type {string[]} */ (
    await redis.eval(
      ADOPT,
      2,
      ...keys,
      queueKey,
      String(init.lockMs),
      String(prefixes.length),
      ...prefixes,
      ...skip,
    )
  );
  let queue = held.get(queueKey);
  if (!queue) held.set(queueKey, (queue = /** @type {Map<string, Held>} */ (new Map())));
  for (let i = 0; i + 1 < found.length; i += 2) {
    const jobId = found[i] ?? '';
    const token = found[i + 1] ?? '';
    if (queue.get(jobId)?.token === token) continue;
    queue.set(jobId, { jobId, token });
    if (!unconfirmed.has(token)) unconfirmed.set(token, { at: now, queueKey, jobId });
  }
}

/** Ends the adoptions no hold confirmed within CONFIRM_MS (see `unconfirmed`). */
function dropUnconfirmed() {
  const now = Date.now();
  for (const [token, { at, queueKey, jobId }] of unconfirmed) {
    // A main loop held up cannot confirm anything: the wait counts from when it last turned late.
    if (now - Math.max(at, silentUntil) < CONFIRM_MS) continue;
    unconfirmed.delete(token);
    const queue = held.get(queueKey);
    if (queue?.get(jobId)?.token === token) queue.delete(jobId);
    leaveAlone(token);
  }
}

async function renewAll() {
  const silentMs = Date.now() - lastBeat;
  if (silentMs > init.hungMs) {
    // The main loop has not turned for too long: let the locks lapse so others take the jobs.
    if (!hungReported) report({ type: 'hung', sinceMs: silentMs });
    hungReported = true;
    return;
  }
  if (silentMs > LATE_MS) silentUntil = Date.now();
  if (inFlight >= MAX_IN_FLIGHT) return;
  if (unconfirmed.size > 0) dropUnconfirmed();
  inFlight++;
  try {
    const rounds = [...held]
      .filter(([, jobs]) => jobs.size > 0)
      .map(([queueKey, jobs]) => renewQueue(queueKey, [...jobs.values()]));
    for (const key of alive)
      rounds.push(redis.set(key, '1', 'PX', init.lockMs).then(() => undefined));
    if (silentMs > LATE_MS || Date.now() < lateUntil) {
      for (const [queueKey, ids] of watched) rounds.push(adopt(queueKey, ids));
    }
    const settled = await Promise.allSettled(rounds);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) report({ type: 'error', message: String(failed.reason) });
  } finally {
    inFlight--;
  }
}

/** @param {LockRequest} msg */
function handle(msg) {
  if (msg.type === 'beat') {
    lastBeat = Date.now();
    hungReported = false;
  } else if (msg.type === 'hold') {
    let queue = held.get(msg.queueKey);
    if (!queue) held.set(msg.queueKey, (queue = /** @type {Map<string, Held>} */ (new Map())));
    queue.set(msg.jobId, { jobId: msg.jobId, token: msg.token });
    unconfirmed.delete(msg.token);
    if (msg.fetchedAt !== undefined && Date.now() - msg.fetchedAt > LATE_MS) {
      lateUntil = Date.now() + ADOPT_FOR_MS;
    }
  } else if (msg.type === 'watch') {
    let ids = watched.get(msg.queueKey);
    if (!ids) watched.set(msg.queueKey, (ids = new Set()));
    ids.add(msg.workerId);
  } else if (msg.type === 'alive') {
    alive.add(msg.key);
  } else if (msg.type === 'unalive') {
    alive.delete(msg.key);
  } else {
    const queue = held.get(msg.queueKey);
    const token = queue?.get(msg.jobId)?.token;
    if (token) unconfirmed.delete(token);
    queue?.delete(msg.jobId);
    if (msg.token) leaveAlone(msg.token);
  }
}

// The main thread sends the requests of one turn of its event loop together (see LockKeeper).
port.on('message', (/** @type {LockRequest | LockRequest[]} */ msg) => {
  for (const m of Array.isArray(msg) ? msg : [msg]) handle(m);
});

setInterval(() => void renewAll(), init.renewMs);
