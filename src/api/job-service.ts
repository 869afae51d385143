import { randomUUID, createHash } from 'node:crypto';
import { Job, type Queue } from 'bullmq';
import type { RedisClient } from '../shared/redis.js';
import type { Config } from '../shared/config.js';
import { ApiError, parseFailure, type JobFailure } from '../shared/errors.js';
import {
  PREDICT_JOB,
  parsePartId,
  partResult,
  type InstanceResult,
  type PredictJobData,
  type PredictJobResult,
} from '../shared/jobs.js';
import type { Keys } from '../shared/keys.js';
import type { JobOutcome, ResultHub } from './results-hub.js';

/** The predict body without its envelope: one result, or `predictions` for many. */
export type ResultBody = InstanceResult | { predictions: InstanceResult[] };

/** Public view of a job (GET /v1/jobs/{id}). */
export interface JobView {
  id: string;
  status: 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
  model: string;
  version: string;
  attempts: number;
  createdAt: string;
  finishedAt?: string;
  result?: ResultBody;
  error?: JobFailure;
}

/** What to queue. */
export interface SubmitOptions {
  data: PredictJobData;
  /** 1 (highest) .. 10; absent = ahead of every prioritized job. */
  priority?: number;
  /** Identical in-flight submissions with this id share one job (BullMQ deduplication). */
  dedupId?: string;
  /** Register a waiter for this long before queuing, so no completion can slip past. */
  waitMs?: number;
}

/** A queued (or shared) job and, when asked, the wait for it. */
export interface Submitted {
  jobId: string;
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

// Suffixes of BullMQ's per-queue keys (bullmq QueueKeys): never valid job ids.
const BULLMQ_QUEUE_KEYS = new Set([
  'active',
  'wait',
  'waiting-children',
  'paused',
  'id',
  'delayed',
  'prioritized',
  'stalled-check',
  'completed',
  'failed',
  'stalled',
  'repeat',
  'limiter',
  'meta',
  'events',
  'pc',
  'marker',
  'de',
]);

/** Queue-facing operations of the API: submit, look up, cancel. */
export class JobService {
  constructor(
    private readonly config: Config,
    private readonly queue: Queue<PredictJobData, PredictJobResult>,
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly hub: ResultHub,
    private readonly hooks: JobServiceHooks = {},
  ) {}

  /** Shapes a job's per-instance results like the predict body. */
  static resultBody(results: InstanceResult[], single: boolean): ResultBody {
    return single && results[0] ? results[0] : { predictions: results };
  }

  /** Queues a prediction job. */
  /**
   * BullMQ holds queue calls until its connection is up, which could hang a request forever
   * while Redis is away: refuse fast instead.
   */
  private assertRedis(): void {
    if (this.redis.status !== 'ready') {
      throw new ApiError('unavailable', 'Redis is unreachable; retry shortly.', undefined, 1);
    }
  }

  async submit(options: SubmitOptions): Promise<Submitted> {
    this.assertRedis();
    // Custom ids must not contain ':' nor be all digits (BullMQ); a UUID is neither.
    const jobId = randomUUID();
    const early = options.waitMs !== undefined ? this.hub.wait(jobId, options.waitMs) : undefined;
    let job: Job<PredictJobData, PredictJobResult>;
    try {
      job = await this.queue.add(PREDICT_JOB, options.data, {
        jobId,
        priority: options.priority,
        attempts: this.config.JOB_ATTEMPTS,
        backoff: { type: 'exponential', delay: this.config.JOB_BACKOFF_MS },
        removeOnComplete: { age: this.config.RESULT_TTL_S, count: this.config.RESULT_MAX_JOBS },
        removeOnFail: { age: this.config.RESULT_TTL_S, count: this.config.RESULT_MAX_JOBS },
        ...(options.dedupId ? { deduplication: { id: options.dedupId } } : {}),
      });
    } catch (err) {
      early?.cancel();
      throw err;
    }
    const id = job.id ?? jobId;
    if (id !== jobId) this.hooks.onCoalesced?.();
    if (id === jobId && early) {
      const outcome = early.promise.then((o) => {
        if (o?.state === 'completed') this.hooks.onCompleted?.(o.result);
        return o;
      });
      return { jobId: id, outcome };
    }
    if (id === jobId || options.waitMs === undefined) return { jobId: id, outcome: early?.promise };
    // Deduplicated onto a job queued earlier: wait for that one, which may already be done.
    early?.cancel();
    const shared = this.hub.wait(id, options.waitMs);
    const done = await this.hub.peek(id);
    if (done) this.hub.settle(id, done);
    return { jobId: id, outcome: shared.promise };
  }

  /** Waits for a job to end, at most `waitMs`; falls back to reading the job when no event came. */
  async waitFor(id: string, waitMs: number): Promise<JobOutcome | undefined> {
    // Queue events name the job; a request's public id may name its part of a gathered job.
    const jobId = parsePartId(id)?.jobId ?? id;
    const wait = this.hub.wait(jobId, waitMs);
    const done = await this.hub.peek(jobId).catch(() => undefined);
    if (done) this.hub.settle(jobId, done);
    return (await wait.promise) ?? (await this.hub.peek(jobId));
  }

  /** Submits under an Idempotency-Key: a retried submission gets the first job back. */
  async submitIdempotent(
    key: string,
    options: SubmitOptions,
  ): Promise<{ jobId: string; replayed: boolean }> {
    const slot = this.keys.idempotency(createHash('sha256').update(key).digest('hex'));
    const reserved = `pending-${randomUUID()}`;
    const ok = await this.redis.set(slot, reserved, 'EX', this.config.RESULT_TTL_S, 'NX');
    if (ok !== 'OK') {
      const existing = await this.redis.get(slot);
      if (existing && !existing.startsWith('pending-')) return { jobId: existing, replayed: true };
      throw new ApiError(
        'rate_limited',
        'A submission with this Idempotency-Key is still being queued.',
        undefined,
        1,
      );
    }
    try {
      const { jobId } = await this.submit(options);
      await this.redis.set(slot, jobId, 'EX', this.config.RESULT_TTL_S);
      return { jobId, replayed: false };
    } catch (err) {
      await this.redis.del(slot).catch(() => undefined);
      throw err;
    }
  }

  /** The public view of a job; throws 404 job_not_found. */
  async view(jobId: string): Promise<JobView> {
    this.assertRedis();
    const part = parsePartId(jobId);
    if (part) return this.viewPart(jobId, part.jobId, part.index);
    // `<prefix>:predict:events` and its siblings are BullMQ's own keys, not job hashes.
    if (BULLMQ_QUEUE_KEYS.has(jobId))
      throw new ApiError('job_not_found', `Job "${jobId}" does not exist or has expired.`);
    let job = await Job.fromId<PredictJobData, PredictJobResult>(this.queue, jobId);
    if (!job) {
      const tombstone = await this.redis.get(this.keys.cancelled(jobId));
      if (tombstone) return JSON.parse(tombstone) as JobView;
      throw new ApiError('job_not_found', `Job "${jobId}" does not exist or has expired.`);
    }
    const state = await job.getState();
    // Ended between the two reads: the job read first lacks its result and end time.
    if ((state === 'completed' || state === 'failed') && !job.finishedOn) {
      job = (await Job.fromId<PredictJobData, PredictJobResult>(this.queue, jobId)) ?? job;
    }
    const base = {
      id: jobId,
      model: job.data.model,
      version: job.data.version,
      attempts: Math.max(job.attemptsMade, job.attemptsStarted ?? 0),
      createdAt: new Date(job.timestamp).toISOString(),
      // A completed job reports the worker's own end time, the one its waiters were told.
      ...(job.finishedOn
        ? { finishedAt: new Date(job.returnvalue?.finishedAt ?? job.finishedOn).toISOString() }
        : {}),
    };
    if (state === 'completed' && job.returnvalue) {
      return {
        ...base,
        status: 'completed',
        result: JobService.resultBody(job.returnvalue.results, job.data.single),
      };
    }
    if (state === 'failed')
      return { ...base, status: 'failed', error: parseFailure(job.failedReason) };
    if (state === 'active') return { ...base, status: 'active' };
    if (state === 'unknown')
      throw new ApiError('job_not_found', `Job "${jobId}" does not exist or has expired.`);
    return { ...base, status: state === 'completed' ? 'active' : 'queued' };
  }

  /** One request's view of a gathered job: the job's status with that request's own result. */
  private async viewPart(id: string, jobId: string, index: number): Promise<JobView> {
    const job = await Job.fromId<PredictJobData, PredictJobResult>(this.queue, jobId);
    const meta = job?.data.parts?.[index];
    if (!job || !meta || meta.skip) {
      const tombstone = await this.redis.get(this.keys.cancelled(id));
      if (tombstone) return JSON.parse(tombstone) as JobView;
      throw new ApiError('job_not_found', `Job "${id}" does not exist or has expired.`);
    }
    const view = await this.view(jobId);
    delete view.result;
    if (view.status !== 'completed') return { ...view, id };
    // A job read before it finished keeps returnvalue null: read it again now that it has.
    const done = job.returnvalue
      ? job
      : await Job.fromId<PredictJobData, PredictJobResult>(this.queue, jobId);
    if (!done?.returnvalue) return { ...view, id, status: 'active' };
    const own = partResult(done.returnvalue, index);
    if (own && 'results' in own) {
      return { ...view, id, result: JobService.resultBody(own.results, meta.single) };
    }
    return {
      ...view,
      id,
      status: 'failed',
      error: own ?? { code: 'internal_error', message: 'no result' },
    };
  }

  /** Cancels a job that has not started; throws 409 job_not_cancellable otherwise. */
  async cancel(jobId: string): Promise<void> {
    this.assertRedis();
    const part = parsePartId(jobId);
    if (part) return this.cancelPart(jobId, part.jobId);
    const view = await this.view(jobId);
    if (view.status !== 'queued') {
      throw new ApiError(
        'job_not_cancellable',
        `Job "${jobId}" is ${view.status} and cannot be cancelled.`,
      );
    }
    const record: JobView = { ...view, status: 'cancelled', finishedAt: new Date().toISOString() };
    await this.redis.set(
      this.keys.cancelled(jobId),
      JSON.stringify(record),
      'EX',
      this.config.RESULT_TTL_S,
    );
    // Removal returns 0 when a worker has just locked the job: it is active, not cancellable.
    const removed = await this.queue.remove(jobId);
    if (!removed) {
      await this.redis.del(this.keys.cancelled(jobId));
      throw new ApiError(
        'job_not_cancellable',
        `Job "${jobId}" has started and cannot be cancelled.`,
      );
    }
    this.hub.settle(jobId, { state: 'cancelled' });
  }

  // A request's part can be cancelled only when its job carries nothing else.
  private async cancelPart(id: string, jobId: string): Promise<void> {
    const view = await this.view(id);
    const job = await Job.fromId<PredictJobData, PredictJobResult>(this.queue, jobId);
    const live = (job?.data.parts ?? []).filter((p) => !p.skip).length;
    if (view.status !== 'queued' || live !== 1) {
      const why =
        view.status === 'queued' ? 'shares its queue job with other requests' : `is ${view.status}`;
      throw new ApiError('job_not_cancellable', `Job "${id}" ${why} and cannot be cancelled.`);
    }
    await this.cancel(jobId);
    const record: JobView = { ...view, status: 'cancelled', finishedAt: new Date().toISOString() };
    await this.redis.set(
      this.keys.cancelled(id),
      JSON.stringify(record),
      'EX',
      this.config.RESULT_TTL_S,
    );
  }

  /**
   * The view of a job that a waiter saw end, built from the outcome the queue event carried, so
   * that thousands of waiters answered at once cost no Redis reads; undefined when it cannot be.
   */
  settled(view: JobView, outcome: JobOutcome | undefined): JobView | undefined {
    if (outcome?.state !== 'completed') return undefined;
    const result = outcome.result;
    const part = parsePartId(view.id);
    const own = part ? partResult(result, part.index) : result;
    const single = part ? result.parts?.[part.index]?.single : result.single;
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
