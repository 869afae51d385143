import { LuaScript } from '../../shared/batch-scripts.js';
import type { PredictJobData, PredictJobResult } from '../../shared/jobs.js';
import type { RedisClient } from '../../shared/redis.js';

/** Where a job stands, as BullMQ's getState tells it. */
export type JobState =
  'completed' | 'failed' | 'delayed' | 'prioritized' | 'active' | 'waiting' | 'unknown';

/** What the API reads of a prediction job: its hash's fields and its state. */
export interface JobRecord {
  data: PredictJobData;
  /** When it was queued, ms since the epoch. */
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  /** The return value, parsed (undefined until it completed, or when it is not JSON). */
  returnvalue?: PredictJobResult;
  failedReason?: string;
  attemptsMade: number;
  attemptsStarted: number;
  /** 'fast' for a job queued on the fast lane (shared/fast-lane.ts). */
  lane?: string;
  state: JobState;
}

// KEYS[1] job hash, then the queue's completed, failed, delayed, prioritized, active, wait and
// paused keys; ARGV[1] job id. The hash's fields and the job's state, decided in the order of
// BullMQ's getStateV2 (sets by score, lists by position); nil when the hash is gone.
const READ_JOB = new LuaScript(`
local f = redis.call('HMGET', KEYS[1], 'data', 'timestamp', 'processedOn', 'finishedOn',
  'returnvalue', 'failedReason', 'atm', 'ats', 'lane', 'attemptsMade')
if not f[1] and not f[2] then return nil end
local id, state = ARGV[1], 'unknown'
if redis.call('ZSCORE', KEYS[2], id) then state = 'completed'
elseif redis.call('ZSCORE', KEYS[3], id) then state = 'failed'
elseif redis.call('ZSCORE', KEYS[4], id) then state = 'delayed'
elseif redis.call('ZSCORE', KEYS[5], id) then state = 'prioritized'
elseif redis.call('LPOS', KEYS[6], id) then state = 'active'
elseif redis.call('LPOS', KEYS[7], id) or redis.call('LPOS', KEYS[8], id) then state = 'waiting'
end
f[#f + 1] = state
return f
`);

const LISTS = ['completed', 'failed', 'delayed', 'prioritized', 'active', 'wait', 'paused'];

function parsed<T>(text: string | null | undefined): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

const count = (text: string | null | undefined) => (text ? Number(text) : undefined);

/**
 * Reads job `jobId` of the queue (shard) whose keys `toKey` makes, in one round trip and
 * without building a BullMQ Job (a long-poll reads its job once as it opens: 10,000 of them
 * opening made tens of megabytes of garbage through Job objects and a second script).
 */
export async function readJob(
  redis: RedisClient,
  toKey: (name: string) => string,
  jobId: string,
): Promise<JobRecord | undefined> {
  const reply = (await READ_JOB.run(redis, [toKey(jobId), ...LISTS.map(toKey)], [jobId])) as
    (string | null)[] | null;
  if (!reply) return undefined;
  const [data, timestamp, processedOn, finishedOn, returnvalue, failedReason, atm, ats, lane] =
    reply;
  return {
    data: parsed<PredictJobData>(data) ?? ({} as PredictJobData),
    timestamp: Number(timestamp ?? 0),
    processedOn: count(processedOn),
    finishedOn: count(finishedOn),
    returnvalue: parsed<PredictJobResult>(returnvalue),
    failedReason: failedReason ?? undefined,
    // 'attemptsMade' is the field's name in jobs written by BullMQ before version 5.
    attemptsMade: Number(atm ?? reply[9] ?? 0),
    attemptsStarted: Number(ats ?? 0),
    lane: lane ?? undefined,
    state: (reply[10] ?? 'unknown') as JobState,
  };
}
