import { LuaScript } from './batch-scripts.js';
import { sendTogether, type CommandSpec } from './corked.js';
import type { RedisClient } from './redis.js';

/*
 * The fast lane of online jobs: one Redis list per shard of the prediction queue that idle
 * workers block on (BLMOVE), so that a job reaches a worker with its payload in one hop instead
 * of BullMQ's marker, fetch and lock round trips and scripts. Each job is still a BullMQ job:
 * the API writes its hash as BullMQ's add would (without the `wait` list or any event), the
 * worker moves it to `active` under a BullMQ lock (claim) while it runs, and to `completed`
 * with its return value when done (finish), so Bull Board, `GET /v1/jobs/{id}` and BullMQ's
 * stalled-job check see it as usual. Anything out of the ordinary goes to BullMQ's own path:
 * a job that fails, or whose worker died, is pushed onto `wait` (handoff) and a BullMQ Worker
 * runs it with its attempts and backoff.
 *
 * On its way a job passes through a transit list of the worker that took it: BLMOVE moves it
 * there atomically, and the claim takes it off. A worker's transit list is emptied back onto
 * `wait` once the worker's alive key lapses (its lock thread renews it, like the job locks), by
 * whichever worker sweeps the shard next (reap). Every key of a shard shares the shard's
 * hash tag, so each script stays in one Cluster slot.
 */

/**
 * Whether every key of an online request (cache entry, in-flight claim) and of its shard's queue
 * can meet in one script: one shard (all keys share the prefix's hash tag), or no Cluster.
 */
export function oneSlot(config: {
  QUEUE_SHARDS: number;
  REDIS_CLUSTER_NODES: readonly string[];
}): boolean {
  return config.QUEUE_SHARDS === 1 || config.REDIS_CLUSTER_NODES.length === 0;
}

/** The keys of one shard's fast lane, from BullMQ's key of the queue (`<prefix>:<queue>:`). */
export interface FastLaneKeys {
  /** BullMQ's key of the queue with its trailing colon (job hashes are this + id). */
  queueKey: string;
  /** The list idle workers block on: elements are `id|timestamp|data`. */
  fast: string;
  /** Ids of the workers that consume the lane. */
  consumers: string;
  wait: string;
  active: string;
  stalled: string;
  completed: string;
  marker: string;
  meta: string;
  transit(consumer: string): string;
  alive(consumer: string): string;
  lock(jobId: string): string;
}

/** The fast lane's keys beside BullMQ's of the queue at `queueKey` (`<prefix>:<queue>:`). */
export function fastLaneKeys(queueKey: string): FastLaneKeys {
  return {
    queueKey,
    fast: `${queueKey}fast`,
    consumers: `${queueKey}fast-consumers`,
    wait: `${queueKey}wait`,
    active: `${queueKey}active`,
    stalled: `${queueKey}stalled`,
    completed: `${queueKey}completed`,
    marker: `${queueKey}marker`,
    meta: `${queueKey}meta`,
    transit: (consumer) => `${queueKey}fast-transit:${consumer}`,
    alive: (consumer) => `${queueKey}fast-alive:${consumer}`,
    lock: (jobId) => `${queueKey}${jobId}:lock`,
  };
}

/** A job as it travels the lane. */
export interface FastElement {
  id: string;
  /** When the API queued it, ms since the epoch (BullMQ `timestamp`). */
  timestamp: number;
  /** The job data, JSON. */
  data: string;
}

/** Reads an element of the lane; undefined when it is not one. */
export function parseFastElement(element: string): FastElement | undefined {
  const a = element.indexOf('|');
  const b = a < 0 ? -1 : element.indexOf('|', a + 1);
  if (b < 0) return undefined;
  const timestamp = Number(element.slice(a + 1, b));
  if (!Number.isFinite(timestamp)) return undefined;
  return { id: element.slice(0, a), timestamp, data: element.slice(b + 1) };
}

/**
 * API: KEYS[1] job hash, KEYS[2] fast list, KEYS[3] meta, KEYS[4] wait, then optionally the keys
 * of each of the job's requests, in part order, ARGV[6] of them: its claim's (1: the claim is
 * kept in the cache entry's key) or its cache entry's then its claim's (2); ARGV[1] id, [2]
 * name, [3] data JSON, [4] opts JSON, [5] timestamp. Stores the job as BullMQ's add does (without
 * an event) and queues it on the lane, or, while the queue (meta) is paused (from Bull Board,
 * say: the lane does not run what an operator holds back), on `wait` without a marker, as
 * BullMQ's add does then. With request keys (each request's claim already set NX, see
 * `queueGathered`), it first reads them all and queues the job only when some request needs it:
 * its key holds this job's claim, or nothing taken for an entry or a claim. Returns 1 or 0 (queued
 * or not), then what it read. The payload reaches Lua once: a string Lua makes or receives is
 * hashed byte by byte.
 */
export const ENQUEUE = new LuaScript(`
local width = tonumber(ARGV[6] or '0')
local out = {1}
if width > 0 then
  local read = redis.call('MGET', unpack(KEYS, 5))
  local needed = false
  for at = 1, #read, width do
    local mine = ARGV[1] .. '-p' .. ((at - 1) / width)
    local entry, claim = read[at], read[at + width - 1]
    local answered = entry and string.byte(entry, 1) == 123
    if not answered and claim and claim ~= mine then
      -- A claim names a part as partId writes it, <job>-p<index>; anything else is no claim.
      local index = string.match(claim, '.%-p(%d+)$')
      answered = index ~= nil and #index <= 6
    end
    if not answered then needed = true end
    out[#out + 1] = entry or ''
    if width == 2 then out[#out + 1] = claim or '' end
  end
  if not needed then
    out[1] = 0
    -- Claims set beside a cached entry (a shared cache) would name a job that never was.
    for at = 2, width == 2 and #read or 0, 2 do
      if read[at] == ARGV[1] .. '-p' .. ((at - 2) / 2) then redis.call('DEL', KEYS[4 + at]) end
    end
    return out
  end
end
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'data', ARGV[3], 'opts', ARGV[4],
  'timestamp', ARGV[5], 'delay', 0, 'priority', 0, 'lane', 'fast')
if redis.call('HEXISTS', KEYS[3], 'paused') == 1 then
  redis.call('LPUSH', KEYS[4], ARGV[1])
else
  redis.call('LPUSH', KEYS[2], ARGV[1] .. '|' .. ARGV[5] .. '|' .. ARGV[3])
end
return out
`);

/** A gathered job to queue on a fast lane with its requests' claims (`queueGathered`). */
export interface GatheredJob {
  /** The lane's keys (shard of the job id). */
  lane: FastLaneKeys;
  id: string;
  name: string;
  /** Job data and options, JSON. */
  data: string;
  opts: string;
  /** When queued, ms since the epoch. */
  timestamp: number;
  /** Claim key of each part, in part order: part i is claimed as `<id>-p<i>`, NX. */
  claims: string[];
  /** Cache entry key of each part where it is not its claim key (a shared cache). */
  entries?: string[];
  /** How long a claim lasts, ms. */
  claimMs: number;
}

/** What each request's keys held once its claim was set (`queueGathered`). */
export interface GatheredRead {
  /** Its cache entry's key ('' for nothing; the claim's key where they share it). */
  entry: string;
  /** Its claim's key ('' for nothing): this job's own claim, another part's, or no claim. */
  claim: string;
}

/**
 * Queues a gathered job in one round trip: each part's claim SET NX (a plain command: it never
 * replaces a cache entry or another part's claim, and costs Redis less than a `redis.call`),
 * then ENQUEUE, which reads every request's keys and stores the job only if some request needs
 * it. Returns what ENQUEUE read per request and whether the job was queued: the caller tells
 * hits, requests carried elsewhere and its own parts apart from that read, as ENQUEUE did.
 * Every key must be in the lane's slot (`oneSlot`).
 */
export async function queueGathered(
  redis: RedisClient,
  job: GatheredJob,
): Promise<{ read: GatheredRead[]; queued: boolean }> {
  const { lane, entries } = job;
  const keys = [`${lane.queueKey}${job.id}`, lane.fast, lane.meta, lane.wait];
  if (entries) job.claims.forEach((claim, i) => keys.push(entries[i]!, claim));
  else keys.push(...job.claims);
  const args = [job.id, job.name, job.data, job.opts, job.timestamp, entries ? 2 : 1];
  const commands: CommandSpec[] = job.claims.map((key, i) => [
    'set',
    key,
    `${job.id}-p${i}`,
    'PX',
    job.claimMs,
    'NX',
  ]);
  commands.push(ENQUEUE.command(keys, args));
  const replies = sendTogether(redis, commands);
  // The claims' own replies are not read: a claim that failed only costs a twin its coalescing.
  for (const reply of replies.slice(0, -1)) reply.catch(() => undefined);
  const out = (await ENQUEUE.replyOf(replies[replies.length - 1]!, redis, keys, args)) as (
    number | string
  )[];
  const read = job.claims.map((_, i): GatheredRead => {
    const entry = String(out[1 + (entries ? 2 * i : i)] ?? '');
    return { entry, claim: entries ? String(out[2 + 2 * i] ?? '') : entry };
  });
  return { read, queued: out[0] === 1 };
}

/**
 * Worker, while the lane is empty: KEYS[1] wait, KEYS[2] fast list, KEYS[3] meta, KEYS[4] the
 * worker's transit list; ARGV[1] queue key, ARGV[2] most jobs to take. Takes the oldest jobs of
 * BullMQ's `wait` that were queued while no worker consumed the lane (BullMQ's add: a backlog
 * built while every worker was down) onto the worker's transit list as lane elements, so that
 * they run the fast way instead of through BullMQ's fetch and finish scripts. Only a job BullMQ
 * never started and the lane never held: no attempt started (`ats`), no `lane` flag (a job the
 * lane handed back or a sweep took back stays on BullMQ's path, with its attempts), no
 * deduplication, parent or repeat. It stops at the first job that is not one, leaving it at the
 * head of `wait` for BullMQ. Nothing while the queue is paused or the lane itself holds jobs.
 * Returns the elements taken (each flagged `lane` = fast, as ENQUEUE flags its jobs).
 */
export const ADOPT = new LuaScript(`
if redis.call('HEXISTS', KEYS[3], 'paused') == 1 then return {} end
if redis.call('LLEN', KEYS[2]) > 0 then return {} end
local out = {}
for _ = 1, tonumber(ARGV[2]) do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  local key = ARGV[1] .. id
  local f = redis.call('HMGET', key, 'data', 'timestamp', 'ats', 'lane', 'deid', 'parentKey', 'rjk')
  if not f[1] or not f[2] or f[3] or f[4] or f[5] or f[6] or f[7] then
    redis.call('RPUSH', KEYS[1], id)
    break
  end
  redis.call('HSET', key, 'lane', 'fast')
  local element = id .. '|' .. f[2] .. '|' .. f[1]
  redis.call('LPUSH', KEYS[4], element)
  out[#out + 1] = element
end
return out
`);

// How a job leaves the worker that runs it (FINISH, HANDOFF): KEYS[1] lock, KEYS[2] job hash,
// KEYS[3] active, KEYS[4] stalled, KEYS[5] the worker's transit list; ARGV[1] token ('' while
// unclaimed), ARGV[2] id, ARGV[3] the element BLMOVE returned. False when the job is no longer
// this worker's: its lock is another's, a sweep gave it to `wait`, or it was removed (cancelled).
const LEAVE = `
local function leave()
  if ARGV[1] ~= '' then
    if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
    redis.call('DEL', KEYS[1])
    redis.call('LREM', KEYS[3], -1, ARGV[2])
    redis.call('SREM', KEYS[4], ARGV[2])
    return true
  end
  if redis.call('LREM', KEYS[5], 1, ARGV[3]) == 0 then return false end
  return redis.call('EXISTS', KEYS[2]) == 1
end
`;

/**
 * Worker, for a job still running a while after BLMOVE gave it: KEYS[1] its transit list,
 * KEYS[2] job hash, KEYS[3] lock, KEYS[4] active list; ARGV element, id, token, lock ms,
 * taken-ms, worker name. Makes it an active BullMQ job under the worker's lock, seen as running
 * by Bull Board and the API (1); 0 when it was removed (cancelled), -1 when a sweep took it.
 * Jobs that end sooner are never claimed: the transit list holds them while the worker lives.
 */
export const CLAIM = new LuaScript(`
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return -1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
redis.call('LPUSH', KEYS[4], ARGV[2])
redis.call('HSET', KEYS[2], 'processedOn', ARGV[5], 'pb', ARGV[6])
redis.call('HINCRBY', KEYS[2], 'ats', 1)
return 1
`);

/**
 * Worker, once a job ran: KEYS as LEAVE, then KEYS[6] completed; ARGV as LEAVE, then [4] return
 * value JSON, [5] finished-ms, [6] taken-ms, [7] worker name, [8] oldest finished-ms kept ('' =
 * no trimming this time), [9] most jobs kept, [10] queue key. Moves the job to `completed` as
 * BullMQ's moveToFinished does (0 when it is not this worker's any more), but without events
 * (nothing reads them: the waiter has its reply, and no stream carries results); trimming drops
 * completed jobs past their age or count, at most 100. The job's cache entries and its reply
 * go before it, as plain commands in the same round trip (see FastConsumer): a string handed to
 * a script is hashed byte by byte as Redis makes it a Lua string, so they cost Redis more as
 * arguments of this script than as commands of their own.
 */
export const FINISH = new LuaScript(`${LEAVE}
if not leave() then return 0 end
if ARGV[1] == '' then
  redis.call('HSET', KEYS[2], 'returnvalue', ARGV[4], 'finishedOn', ARGV[5], 'processedOn', ARGV[6],
    'pb', ARGV[7], 'ats', 1, 'atm', 1)
else
  redis.call('HSET', KEYS[2], 'returnvalue', ARGV[4], 'finishedOn', ARGV[5])
  redis.call('HINCRBY', KEYS[2], 'atm', 1)
end
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
if ARGV[8] == '' then return 1 end
local drop = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. ARGV[8], 'LIMIT', 0, 100)
local over = redis.call('ZCARD', KEYS[6]) - tonumber(ARGV[9])
if over > 0 and #drop < 100 then
  for _, id in ipairs(redis.call('ZRANGE', KEYS[6], #drop, #drop + math.min(over, 100 - #drop) - 1)) do
    drop[#drop + 1] = id
  end
end
for _, id in ipairs(drop) do
  redis.call('ZREM', KEYS[6], id)
  redis.call('DEL', ARGV[10] .. id, ARGV[10] .. id .. ':logs')
end
return 1
`);

/**
 * Worker, when a job of the lane failed: KEYS as LEAVE, then KEYS[6] wait, KEYS[7] marker; ARGV
 * as LEAVE. Gives the job to BullMQ's own path (it runs again there, with its attempts, backoff
 * and final failure); 0 when it is not this worker's any more.
 */
export const HANDOFF = new LuaScript(`${LEAVE}
if not leave() then return 0 end
redis.call('LPUSH', KEYS[6], ARGV[2])
redis.call('ZADD', KEYS[7], 0, '0')
return 1
`);

/**
 * Any worker, now and then: KEYS[1] consumers set, KEYS[2] wait, KEYS[3] marker; ARGV queue
 * key, then optionally one consumer id whose transit list is emptied although it is alive
 * (itself, after its blocking connection broke with a BLMOVE unanswered, or as it stops) and the
 * ids to leave there (jobs it took whose claim is on its way). Every job in the transit list of
 * a consumer whose alive key lapsed goes to `wait`; returns how many moved.
 */
export const REAP = new LuaScript(`
local moved = 0
local function empty(consumer, keep)
  local transit = ARGV[1] .. 'fast-transit:' .. consumer
  for _, el in ipairs(redis.call('LRANGE', transit, 0, -1)) do
    local bar = string.find(el, '|', 1, true)
    local id = bar and string.sub(el, 1, bar - 1) or ''
    if not keep[id] then
      redis.call('LREM', transit, 1, el)
      if bar and redis.call('EXISTS', ARGV[1] .. id) == 1 then
        redis.call('LPUSH', KEYS[2], id)
        moved = moved + 1
      end
    end
  end
end
for _, consumer in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'fast-alive:' .. consumer) == 0 then
    empty(consumer, {})
    redis.call('SREM', KEYS[1], consumer)
  end
end
if ARGV[2] then
  local keep = {}
  for i = 3, #ARGV do keep[ARGV[i]] = true end
  empty(ARGV[2], keep)
end
if moved > 0 then redis.call('ZADD', KEYS[3], 0, '0') end
return moved
`);
