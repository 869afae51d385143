import { createHash, randomInt } from 'node:crypto';
import { shardOfHash, shardOfText, type ShardedQueue } from '../../shared/shards.js';
import type { RedisClient } from '../../shared/redis.js';
import type { Config } from '../../shared/config.js';
import { ApiError, parseFailure } from '../../shared/errors.js';
import {
  PREDICT_JOB,
  partId,
  partResult,
  predictJobOptions,
  type InstanceResult,
  type PredictJobData,
  type PredictJobResult,
} from '../../shared/jobs.js';
import type { Keys } from '../../shared/keys.js';
import { newJobId, type JobRef, type Owner } from './public-ids.js';
import type { JobOutcome, ResultHub } from './results-hub.js';
import type { JobView } from '../../shared/contracts/jobs.js';
import type { Departure } from '../http/deferred-json.js';
import type { FastLanes } from './fast-lanes.js';
import { readJob } from './job-record.js';

/** The predict body without its envelope: one result, or `predictions` for many. */
export type ResultBody = InstanceResult | { predictions: InstanceResult[] };

/** Public view of a job (GET /v1/jobs/{id}): the contract's type, so the two cannot drift. */
export type { JobView } from '../../shared/contracts/jobs.js';

/** What to queue. */
export interface SubmitOptions {
  data: PredictJobData;
  /** 1 (highest) .. 10; absent = ahead of every prioritized job. */
  priority?: number;
  /** Identical in-flight submissions with this id share one job (BullMQ deduplication). */
  dedupId?: string;
  /** Register a waiter for this long before queuing, so no completion can slip past. */
  waitMs?: number;
  /** Input hash (hex) that picks the queue shard; else the dedup id, else a random shard. */
  shardKey?: string;
}

/** The queue shard of a submission: identical inputs (and deduplicated ones) meet on one. */
function shardOf(options: SubmitOptions, shards: number): number {
  if (options.shardKey) return shardOfHash(options.shardKey, shards);
  if (options.dedupId) return shardOfText(options.dedupId, shards);
  return randomInt(shards);
}

/** A queued (or shared) job and, when asked, the wait for it. */
export interface Submitted {
  ref: JobRef;
  /** Resolves with the outcome, or undefined when the wait ran out first. */
  outcome?: Promise<JobOutcome | undefined>;
}

/** Observers of submissions, for metrics. */
export interface JobServiceHooks {
  /** A submission joined an identical job already in flight (deduplicated). */
  onCoalesced?: () => void;
  /** A job this process queued and waited for completed. */
  onCompleted?: (result: PredictJobResult) => void;
}

const notFound = (id: string) =>
  new ApiError('job_not_found', `Job "${id}" does not exist or has expired.`);

/** The ref as stored in tombstones and in-flight claims. */
const refKey = (ref: JobRef): string =>
  ref.part === undefined ? ref.jobId : partId(ref.jobId, ref.part);

/**
 * Queue-facing operations of the API: submit, look up, cancel. Jobs are addressed by ref (the
 * decoded public id) and checked against their owner: another owner's job is "not found".
 */
export class JobService {
  constructor(
    private readonly config: Config,
    private readonly queue: ShardedQueue<PredictJobData, PredictJobResult>,
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly hub: ResultHub,
    /** This replica's id: its workers reply here (see shared/replies.ts). */
    private readonly replicaId: string,
    /** Which shards' fast lanes a worker consumes: plain jobs go there. */
    private readonly lanes: FastLanes,
    private readonly hooks: JobServiceHooks = {},
  ) {}

  /** Shapes a job's per-instance results like the predict body. */
  static resultBody(results: InstanceResult[], single: boolean): ResultBody {
    return single && results[0] ? results[0] : { predictions: results };
  }

  /**
   * BullMQ holds queue calls until its connection is up, which could hang a request forever
   * while Redis is away: refuse fast instead.
   */
  private assertRedis(): void {
    if (this.redis.status !== 'ready') {
      throw new ApiError('unavailable', 'Redis is unreachable; retry shortly.', undefined, 1);
    }
  }

  /**
   * Queues a prediction job of its own (not gathered): on its shard's fast lane when a worker
   * consumes it and the job asks for nothing the lane does not do (priority, deduplication),
   * else through BullMQ's add.
   */
  async submit(options: SubmitOptions): Promise<Submitted> {
    this.assertRedis();
    const shard = shardOf(options, this.config.QUEUE_SHARDS);
    const jobId = newJobId(shard);
    this.hub.expect(jobId);
    const early = options.waitMs !== undefined ? this.hub.wait(jobId, options.waitMs) : undefined;
    const data = { ...options.data, replyTo: this.replicaId };
    const opts = predictJobOptions(this.config);
    let id = jobId;
    try {
      if (!options.priority && !options.dedupId && this.lanes.open(shard)) {
        await this.lanes.enqueue(this.queue.forJob(jobId).toKey(''), jobId, data, opts);
      } else {
        const job = await this.queue.add(PREDICT_JOB, data, {
          ...opts,
          jobId,
          priority: options.priority,
          ...(options.dedupId ? { deduplication: { id: options.dedupId } } : {}),
        });
        id = job.id ?? jobId;
      }
    } catch (err) {
      early?.cancel();
      throw err;
    }
    if (id !== jobId) this.hooks.onCoalesced?.();
    if (id === jobId && early) {
      const outcome = early.promise.then((o) => {
        if (o?.state === 'completed') this.hooks.onCompleted?.(o.result);
        return o;
      });
      return { ref: { jobId: id }, outcome };
    }
    if (id === jobId || options.waitMs === undefined)
      return { ref: { jobId: id }, outcome: early?.promise };
    // Deduplicated onto a job queued earlier (the dedup id carries the owner): wait for that one.
    early?.cancel();
    const shared = this.hub.wait(id, options.waitMs, { poll: true });
    const done = await this.hub.peek(id);
    if (done) this.hub.settle(id, done);
    return { ref: { jobId: id }, outcome: shared.promise };
  }

  /**
   * Waits for a job to end, at most `waitMs`; falls back to reading the job when no event came.
   * Promise steps, not an async function: a long-poll's wait then holds no suspended frame.
   */
  waitFor(ref: JobRef, waitMs: number, departure?: Departure): Promise<JobOutcome | undefined> {
    const wait = this.hub.wait(ref.jobId, waitMs, { poll: true });
    // The asker went away: its wait ends now (the promise below then resolves undefined).
    departure?.onGone(() => wait.cancel());
    // Ended already (before the wait was registered): settled from the job itself.
    void this.hub.peek(ref.jobId).then(
      (done) => done && this.hub.settle(ref.jobId, done),
      () => undefined,
    );
    return wait.promise.then((outcome) => {
      departure?.onGone(undefined);
      if (departure?.gone) return undefined;
      return outcome ?? this.hub.peek(ref.jobId);
    });
  }

  /**
   * Submits under an Idempotency-Key, scoped to `owner` and bound to `fingerprint` (a hash of
   * the request): a retry gets the first job back; another request under the key gets 422.
   */
  async submitIdempotent(
    owner: Owner,
    key: string,
    fingerprint: string,
    options: SubmitOptions,
  ): Promise<{ ref: JobRef; replayed: boolean }> {
    const slot = this.keys.idempotency(
      createHash('sha256').update(`${owner}\0${key}`).digest('hex'),
    );
    const pending = JSON.stringify({ fp: fingerprint, pending: true });
    const ok = await this.redis.set(slot, pending, 'EX', this.config.RESULT_TTL_S, 'NX');
    if (ok !== 'OK') {
      const existing = await this.redis.get(slot);
      const stored = existing ? (JSON.parse(existing) as { fp?: string; jobId?: string }) : {};
      if (stored.fp !== undefined && stored.fp !== fingerprint) {
        throw new ApiError(
          'idempotency_key_reused',
          'This Idempotency-Key was already used with a different request; use a new key.',
          [{ path: 'Idempotency-Key', message: 'already used with a different request' }],
        );
      }
      if (stored.jobId) return { ref: { jobId: stored.jobId }, replayed: true };
      throw new ApiError(
        'rate_limited',
        'A submission with this Idempotency-Key is still being queued.',
        undefined,
        1,
      );
    }
    try {
      const { ref } = await this.submit(options);
      const record = JSON.stringify({ fp: fingerprint, jobId: ref.jobId });
      await this.redis.set(slot, record, 'EX', this.config.RESULT_TTL_S);
      return { ref, replayed: false };
    } catch (err) {
      await this.redis.del(slot).catch(() => undefined);
      throw err;
    }
  }

  private async tombstone(ref: JobRef, id: string): Promise<JobView | undefined> {
    const raw = await this.redis.get(this.keys.cancelled(refKey(ref)));
    return raw ? { ...(JSON.parse(raw) as JobView), id } : undefined;
  }

  /** The view of `ref` under public id `id` for `owner`; throws 404 job_not_found. */
  async view(owner: Owner, ref: JobRef, id: string): Promise<JobView> {
    this.assertRedis();
    const read = () =>
      readJob(this.redis, (name) => this.queue.forJob(ref.jobId).toKey(name), ref.jobId);
    let job = await read();
    const meta = ref.part === undefined ? job?.data : job?.data.parts?.[ref.part];
    if (!job || !meta || (ref.part === undefined && job.data.parts) || meta.owner !== owner) {
      const gone = await this.tombstone(ref, id);
      if (gone) return gone;
      throw notFound(id);
    }
    if (ref.part !== undefined && job.data.parts?.[ref.part]?.skip) throw notFound(id);
    let state = job.state;
    // A job of the fast lane is on no BullMQ list until a worker claims it (shared/fast-lane.ts).
    if (state === 'unknown' && job.lane === 'fast') state = job.processedOn ? 'active' : 'waiting';
    // Ended as its state was read: the fields read first lack its result and end time.
    if ((state === 'completed' || state === 'failed') && (!job.finishedOn || !job.returnvalue)) {
      job = (await read()) ?? job;
    }
    const base = {
      id,
      model: job.data.model,
      version: job.data.version,
      attempts: Math.max(job.attemptsMade, job.attemptsStarted ?? 0),
      createdAt: new Date(job.timestamp).toISOString(),
      // A completed job reports the worker's own end time, the one its waiters were told.
      ...(job.finishedOn
        ? { finishedAt: new Date(job.returnvalue?.finishedAt ?? job.finishedOn).toISOString() }
        : {}),
    };
    // The waiter was told before BullMQ's bookkeeping of the job ended: tell the same here.
    const told =
      state === 'completed' || state === 'failed' ? undefined : this.hub.recentOutcome(ref.jobId);
    if (told?.state === 'completed') {
      const view = this.settled({ ...base, status: 'active' }, ref, told);
      if (view) return view;
    }
    if (state === 'failed')
      return { ...base, status: 'failed', error: parseFailure(job.failedReason) };
    if (state === 'active') return { ...base, status: 'active' };
    if (state === 'unknown') throw notFound(id);
    if (state !== 'completed') return { ...base, status: 'queued' };
    if (!job.returnvalue) return { ...base, status: 'active' };
    if (ref.part === undefined) {
      return {
        ...base,
        status: 'completed',
        result: JobService.resultBody(job.returnvalue.results, job.data.single),
      };
    }
    const own = partResult(job.returnvalue, ref.part);
    if (own && 'results' in own) {
      return {
        ...base,
        status: 'completed',
        result: JobService.resultBody(own.results, meta.single),
      };
    }
    return {
      ...base,
      status: 'failed',
      error: own ?? { code: 'internal_error', message: 'no result' },
    };
  }

  /**
   * Cancels a job that has not started; throws 409 job_not_cancellable otherwise. A request's
   * part of a gathered job can be cancelled only when its job carries nothing else: a job
   * shared with other requests is never cancelled from the public API.
   */
  async cancel(owner: Owner, ref: JobRef, id: string): Promise<void> {
    const view = await this.view(owner, ref, id);
    if (view.status !== 'queued') {
      throw new ApiError(
        'job_not_cancellable',
        `Job "${id}" is ${view.status} and cannot be cancelled.`,
      );
    }
    if (ref.part !== undefined) {
      const job = await this.queue.getJob(ref.jobId);
      const live = (job?.data.parts ?? []).filter((p) => !p.skip).length;
      if (live !== 1) {
        throw new ApiError(
          'job_not_cancellable',
          `Job "${id}" shares its queue job with other requests and cannot be cancelled.`,
        );
      }
    }
    const record: JobView = { ...view, status: 'cancelled', finishedAt: new Date().toISOString() };
    const tombstone = this.keys.cancelled(refKey(ref));
    await this.redis.set(tombstone, JSON.stringify(record), 'EX', this.config.RESULT_TTL_S);
    // Removal returns 0 when a worker has just locked the job: it is active, not cancellable.
    const removed = await this.queue.remove(ref.jobId);
    if (!removed) {
      await this.redis.del(tombstone);
      throw new ApiError('job_not_cancellable', `Job "${id}" has started and cannot be cancelled.`);
    }
    this.hub.settle(ref.jobId, { state: 'cancelled' });
  }

  /**
   * The view of a job that a waiter saw end, built from the outcome the queue event carried, so
   * that thousands of waiters answered at once cost no Redis reads; undefined when it cannot be.
   */
  settled(view: JobView, ref: JobRef, outcome: JobOutcome | undefined): JobView | undefined {
    if (outcome?.state !== 'completed') return undefined;
    const result = outcome.result;
    const own = ref.part !== undefined ? partResult(result, ref.part) : result;
    const single = ref.part !== undefined ? result.parts?.[ref.part]?.single : result.single;
    if (!own || !('results' in own) || single === undefined || result.finishedAt === undefined)
      return undefined;
    return {
      ...view,
      status: 'completed',
      attempts: Math.max(view.attempts, 1),
      finishedAt: new Date(result.finishedAt).toISOString(),
      result: JobService.resultBody(own.results, single),
    };
  }
}
