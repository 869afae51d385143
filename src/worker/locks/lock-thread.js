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

// KEYS: active list, stalled set; ARGV: queue key, lock ms, then `<workerId>:` prefixes. Renews
// every active job whose lock token starts with one of the prefixes (so it is this worker's) and
// returns them as job id, token pairs. Run only while the worker is late: it reads every active
// job of the queue, but a job Redis gave this worker is locked from then on, while the worker
// learns of it (and holds it) only once its event loop reads the reply: seconds later when the
// CPU is saturated.
const ADOPT = `
local found = {}
for _, jobId in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local lockKey = ARGV[1] .. jobId .. ':lock'
  local token = redis.call('GET', lockKey)
  if token then
    for i = 3, #ARGV do
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
/** Alive keys of fast-lane consumers, renewed like the locks. @type {Set<string>} */
const alive = new Set();
let lastBeat = Date.now();
let lateUntil = 0;
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
  const found = /** @type {string[]} */ (
    await redis.eval(ADOPT, 2, ...keys, queueKey, String(init.lockMs), ...prefixes)
  );
  let queue = held.get(queueKey);
  if (!queue) held.set(queueKey, (queue = /** @type {Map<string, Held>} */ (new Map())));
  for (let i = 0; i + 1 < found.length; i += 2) {
    const jobId = found[i] ?? '';
    queue.set(jobId, { jobId, token: found[i + 1] ?? '' });
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
  if (inFlight >= MAX_IN_FLIGHT) return;
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

port.on('message', (/** @type {LockRequest} */ msg) => {
  if (msg.type === 'beat') {
    lastBeat = Date.now();
    hungReported = false;
  } else if (msg.type === 'hold') {
    let queue = held.get(msg.queueKey);
    if (!queue) held.set(msg.queueKey, (queue = /** @type {Map<string, Held>} */ (new Map())));
    queue.set(msg.jobId, { jobId: msg.jobId, token: msg.token });
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
    held.get(msg.queueKey)?.delete(msg.jobId);
  }
});

setInterval(() => void renewAll(), init.renewMs);
