import type { Queue, QueueEvents } from 'bullmq';
import type { RedisClient } from '../shared/redis.js';
import { parseFailure, type JobFailure } from '../shared/errors.js';
import type { PredictJobResult } from '../shared/jobs.js';
import type { Logger } from '../shared/logger.js';

/** How a job ended. */
export type JobOutcome =
  | { state: 'completed'; result: PredictJobResult }
  | { state: 'failed'; failure: JobFailure }
  | { state: 'cancelled' };

type Listener = (outcome: JobOutcome | undefined) => void;

/** A registered wait; `cancel` drops it without resolving. */
export interface Wait {
  promise: Promise<JobOutcome | undefined>;
  cancel(): void;
}

function parseResult(raw: unknown): PredictJobResult | undefined {
  if (typeof raw === 'string') {
    try {
      return JSON.parse(raw) as PredictJobResult;
    } catch {
      return undefined;
    }
  }
  return raw && typeof raw === 'object' ? (raw as PredictJobResult) : undefined;
}

/**
 * Fans the queue's completion events out to the requests waiting for them. One QueueEvents
 * connection serves every waiter of the process. Delivery is best-effort, so a wait that times
 * out is followed by a direct look at the job (see `peek`), and a reconnect re-checks everyone.
 */
export class ResultHub {
  private readonly waiters = new Map<string, Set<Listener>>();
  private readonly activeWatchers = new Map<string, Set<() => void>>();
  private closing = false;
  private readonly observers = new Set<(jobId: string) => void>();

  constructor(
    private readonly queue: Queue,
    /** Producer connection used to read job hashes. */
    private readonly redis: RedisClient,
    events: QueueEvents,
    private readonly logger: Logger,
  ) {
    this.attach(events);
  }

  /** Also fans out the events of another queue (batch chunks); job ids must not collide. */
  attach(events: QueueEvents): void {
    events.on('completed', ({ jobId, returnvalue }) => {
      const result = parseResult(returnvalue);
      if (result) this.settle(jobId, { state: 'completed', result });
      else void this.recheck([jobId]);
    });
    events.on('failed', ({ jobId, failedReason }) => {
      this.settle(jobId, { state: 'failed', failure: parseFailure(failedReason) });
    });
    events.on('removed', ({ jobId }) => this.settle(jobId, { state: 'cancelled' }));
    events.on('active', ({ jobId }) => {
      for (const cb of this.activeWatchers.get(jobId) ?? []) cb();
    });
    events.on('error', (err) => this.logger.warn({ err: err.message }, 'queue events error'));
    // Observers hear of every job that ends, waited for or not (batch progress follows chunks).
    events.on('completed', ({ jobId }) => this.notify(jobId));
    events.on('failed', ({ jobId }) => this.notify(jobId));
    events.on('removed', ({ jobId }) => this.notify(jobId));
  }

  /** Calls `listener` with the id of every job of the queue that ends; returns the unsubscribe. */
  observe(listener: (jobId: string) => void): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  private notify(jobId: string): void {
    for (const listener of this.observers) listener(jobId);
  }

  /** Number of requests waiting. */
  get size(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  /** Waits for `jobId` to end; resolves undefined after `timeoutMs` without an end. */
  wait(jobId: string, timeoutMs: number): Wait {
    if (this.closing) return { promise: Promise.resolve(undefined), cancel: () => undefined };
    let listener: Listener = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    const promise = new Promise<JobOutcome | undefined>((resolve) => {
      listener = (outcome) => {
        clearTimeout(timer);
        this.remove(jobId, listener);
        resolve(outcome);
      };
      timer = setTimeout(() => listener(undefined), timeoutMs);
      let set = this.waiters.get(jobId);
      if (!set) this.waiters.set(jobId, (set = new Set()));
      set.add(listener);
    });
    return {
      promise,
      cancel: () => {
        clearTimeout(timer);
        this.remove(jobId, listener);
      },
    };
  }

  /** Calls `cb` whenever `jobId` becomes active (best-effort, like every queue event); returns the unsubscribe. */
  onActive(jobId: string, cb: () => void): () => void {
    let set = this.activeWatchers.get(jobId);
    if (!set) this.activeWatchers.set(jobId, (set = new Set()));
    set.add(cb);
    return () => {
      set.delete(cb);
      if (set.size === 0 && this.activeWatchers.get(jobId) === set)
        this.activeWatchers.delete(jobId);
    };
  }

  /** Resolves every waiter of `jobId` with `outcome`. */
  settle(jobId: string, outcome: JobOutcome): void {
    const set = this.waiters.get(jobId);
    if (!set) return;
    this.waiters.delete(jobId);
    for (const listener of set) listener(outcome);
  }

  /** Answers every waiter now, without an outcome (used on shutdown). */
  releaseAll(): void {
    this.closing = true;
    for (const [jobId, set] of [...this.waiters]) {
      this.waiters.delete(jobId);
      for (const listener of set) listener(undefined);
    }
  }

  private remove(jobId: string, listener: Listener): void {
    const set = this.waiters.get(jobId);
    if (!set) return;
    set.delete(listener);
    if (set.size === 0) this.waiters.delete(jobId);
  }

  /** Reads how a job ended straight from its hash; undefined while it runs or when unknown. */
  async peek(jobId: string): Promise<JobOutcome | undefined> {
    const [finishedOn, returnvalue, failedReason] = await this.redis.hmget(
      this.queue.toKey(jobId),
      'finishedOn',
      'returnvalue',
      'failedReason',
    );
    if (!finishedOn) return undefined;
    const result = returnvalue ? parseResult(returnvalue) : undefined;
    if (result) return { state: 'completed', result };
    return { state: 'failed', failure: parseFailure(failedReason ?? undefined) };
  }

  /** Looks at the given jobs directly and settles those that ended (events may be missed). */
  async recheck(jobIds: string[] = [...this.waiters.keys()]): Promise<void> {
    for (const jobId of jobIds) {
      try {
        const outcome = await this.peek(jobId);
        if (outcome) this.settle(jobId, outcome);
      } catch (err) {
        this.logger.debug({ err, jobId }, 'recheck failed');
      }
    }
  }
}
