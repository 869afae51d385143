import type { QueueEvents } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
import { parseFailure, type JobFailure } from '../../shared/errors.js';
import type { PredictJobResult } from '../../shared/jobs.js';
import type { Logger } from '../../shared/logger.js';
import type { ReplyMessage } from '../../shared/replies.js';

/** How a job ended. */
export type JobOutcome =
  | { state: 'completed'; result: PredictJobResult }
  | { state: 'failed'; failure: JobFailure }
  | { state: 'cancelled' };

/** A registered wait; `cancel` drops it without resolving. */
export interface Wait {
  promise: Promise<JobOutcome | undefined>;
  /** Ends the wait now: the promise resolves undefined. */
  cancel(): void;
}

/**
 * One registered wait, all in one object (10,000 long-polls hold 10,000 of them): its promise,
 * its timer (which calls `expire` with it, no closure of its own) and the next wait for the same
 * job (a job's waits are a list).
 */
class Waiter implements Wait {
  readonly promise: Promise<JobOutcome | undefined>;
  next: Waiter | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  private resolve: ((outcome: JobOutcome | undefined) => void) | undefined;

  constructor(
    private readonly hub: ResultHub,
    readonly jobId: string,
  ) {
    this.promise = new Promise((resolve) => (this.resolve = resolve));
  }

  cancel(): void {
    this.hub.end(this, undefined);
  }

  /** Resolves the promise (once); false when it was resolved already. */
  resolveWith(outcome: JobOutcome | undefined): boolean {
    const resolve = this.resolve;
    if (!resolve) return false;
    this.resolve = undefined;
    clearTimeout(this.timer);
    resolve(outcome);
    return true;
  }
}

const expire = (waiter: Waiter) => waiter.cancel();

/** Options of one wait. */
export interface WaitOptions {
  /**
   * Read the job now and then while waiting, unless this replica queued it (its worker replies
   * here). For jobs another replica queued, or one that died: they send no reply to this one.
   */
  poll?: boolean;
  /** Read the job now and then even when queued here, so `onActive` watchers hear of it. */
  watchActive?: boolean;
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

// Period of the loop that reads polled jobs; a polled job is read at most this often at first,
// backing off to POLL_MAX_MS.
const TICK_MS = 100;
const POLL_MAX_MS = 1000;
// A job this replica queued is read once its reply is this late (pub/sub is best-effort).
const OWN_CHECK_MS = 5000;
// Outcomes stay at hand this long, for a view that reads the job before its bookkeeping ended.
const RECENT_MS = 10_000;
// A job queued here that never replied is forgotten after this long.
const OWN_TTL_MS = 15 * 60_000;

interface Check {
  due: number;
  gapMs: number;
  poll: boolean;
}

/**
 * Hands job ends to the requests of this process that wait for them. Online jobs queued here
 * carry this replica's id; their worker publishes the outcome on this replica's own channel
 * (see shared/replies.ts), so no other replica reads it and no event stream carries results.
 * Jobs queued elsewhere are read from their hash now and then instead; batch chunks still end
 * through their queue's events (see `attach`).
 */
export class ResultHub {
  /** The first wait of each job waited for (see Waiter.next). */
  private readonly waiters = new Map<string, Waiter>();
  private readonly activeWatchers = new Map<string, Set<() => void>>();
  private readonly checks = new Map<string, Check>();
  private readonly own = new Map<string, number>();
  private readonly recent = new Map<string, { outcome: JobOutcome; at: number }>();
  private closing = false;
  private readonly observers = new Set<(jobId: string) => void>();
  private readonly timer: NodeJS.Timeout;
  private sweptAt = Date.now();

  constructor(
    private readonly queue: { toKey(jobId: string): string },
    /** Producer connection used to read job hashes. */
    private readonly redis: RedisClient,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
  }

  /** Takes one reply message off this replica's channel. */
  reply(text: string): void {
    let message: ReplyMessage;
    try {
      message = JSON.parse(text) as ReplyMessage;
    } catch {
      return;
    }
    this.own.delete(message.jobId);
    if (message.state === 'completed') {
      this.settle(message.jobId, { state: 'completed', result: message.result });
    } else {
      this.settle(message.jobId, { state: 'failed', failure: message.failure });
    }
  }

  /** Notes that this replica queued `jobId` with itself as `replyTo`. */
  expect(jobId: string): void {
    this.own.set(jobId, Date.now());
  }

  /** Undoes `expect`: the job was never queued. */
  forget(jobId: string): void {
    this.own.delete(jobId);
    this.checks.delete(jobId);
  }

  /** Fans out the end events of a queue (batch chunks); job ids must not collide. */
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
    events.on('error', (err) => this.logger.warn({ err: err.message }, 'queue events error'));
    // Observers hear of every job that ends, waited for or not (batch progress follows chunks).
    events.on('completed', ({ jobId }) => this.notify(jobId));
    events.on('failed', ({ jobId }) => this.notify(jobId));
    events.on('removed', ({ jobId }) => this.notify(jobId));
  }

  /** Calls `listener` with the id of every job of an attached queue that ends; returns the unsubscribe. */
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
    for (const first of this.waiters.values())
      for (let w: Waiter | undefined = first; w; w = w.next) n++;
    return n;
  }

  /** Waits for `jobId` to end; resolves undefined after `timeoutMs` without an end. */
  wait(jobId: string, timeoutMs: number, options: WaitOptions = {}): Wait {
    if (this.closing) return { promise: Promise.resolve(undefined), cancel: () => undefined };
    const waiter = new Waiter(this, jobId);
    waiter.timer = setTimeout(expire, timeoutMs, waiter);
    waiter.next = this.waiters.get(jobId);
    this.waiters.set(jobId, waiter);
    this.schedule(jobId, options.poll ?? false, options.watchActive ?? false);
    return waiter;
  }

  /** Ends `waiter` with `outcome` (undefined: no outcome) and drops it from its job's waits. */
  end(waiter: Waiter, outcome: JobOutcome | undefined): void {
    if (!waiter.resolveWith(outcome)) return;
    const { jobId } = waiter;
    let first = this.waiters.get(jobId);
    if (first === waiter) first = waiter.next;
    else {
      for (let w = first; w; w = w.next) {
        if (w.next === waiter) {
          w.next = waiter.next;
          break;
        }
      }
    }
    if (first) this.waiters.set(jobId, first);
    else if (this.waiters.get(jobId) === waiter) {
      this.waiters.delete(jobId);
      this.checks.delete(jobId);
    }
  }

  private schedule(jobId: string, poll: boolean, always: boolean): void {
    const check = this.checks.get(jobId);
    const remote = always || (poll && !this.own.has(jobId));
    if (check) {
      check.poll ||= remote;
      return;
    }
    if (!remote && !this.own.has(jobId)) return;
    const gapMs = remote ? TICK_MS : OWN_CHECK_MS;
    this.checks.set(jobId, { due: Date.now() + gapMs, gapMs, poll: remote });
  }

  /**
   * Calls `cb` once `jobId` is seen active (read from its hash while anyone watches); returns
   * the unsubscribe.
   */
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
    this.recent.set(jobId, { outcome, at: Date.now() });
    this.checks.delete(jobId);
    let w = this.waiters.get(jobId);
    this.waiters.delete(jobId);
    for (; w; w = w.next) w.resolveWith(outcome);
  }

  /** How `jobId` ended, when it did so in the last seconds and this replica heard of it. */
  recentOutcome(jobId: string): JobOutcome | undefined {
    return this.recent.get(jobId)?.outcome;
  }

  /** Answers every waiter now, without an outcome (used on shutdown). */
  releaseAll(): void {
    this.closing = true;
    clearInterval(this.timer);
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const first of all)
      for (let w: Waiter | undefined = first; w; w = w.next) w.resolveWith(undefined);
  }

  /** Reads how a job ended straight from its hash; undefined while it runs or when unknown. */
  async peek(jobId: string): Promise<JobOutcome | undefined> {
    return (await this.read(jobId)).outcome;
  }

  private async read(jobId: string): Promise<{ outcome?: JobOutcome; active: boolean }> {
    const [finishedOn, returnvalue, failedReason, processedOn] = await this.redis.hmget(
      this.queue.toKey(jobId),
      'finishedOn',
      'returnvalue',
      'failedReason',
      'processedOn',
    );
    if (!finishedOn) return { active: processedOn !== null };
    const result = returnvalue ? parseResult(returnvalue) : undefined;
    if (result) return { outcome: { state: 'completed', result }, active: false };
    return {
      outcome: { state: 'failed', failure: parseFailure(failedReason ?? undefined) },
      active: false,
    };
  }

  /** Looks at the given jobs directly and settles those that ended (a reply may be lost). */
  async recheck(jobIds: string[] = [...this.waiters.keys()]): Promise<void> {
    await Promise.all(jobIds.map((jobId) => this.look(jobId)));
  }

  private async look(jobId: string): Promise<void> {
    try {
      const { outcome, active } = await this.read(jobId);
      if (outcome) return this.settle(jobId, outcome);
      if (active) for (const cb of this.activeWatchers.get(jobId) ?? []) cb();
    } catch (err) {
      this.logger.debug({ err, jobId }, 'recheck failed');
    }
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const due: string[] = [];
    for (const [jobId, check] of this.checks) {
      if (check.due > now) continue;
      if (!check.poll && !this.own.has(jobId)) {
        this.checks.delete(jobId);
        continue;
      }
      due.push(jobId);
      check.gapMs = check.poll ? Math.min(check.gapMs * 2, POLL_MAX_MS) : OWN_CHECK_MS;
      check.due = now + check.gapMs;
    }
    if (now - this.sweptAt > RECENT_MS) this.sweep(now);
    if (due.length > 0 && this.redis.status === 'ready') await this.recheck(due);
  }

  private sweep(now: number): void {
    this.sweptAt = now;
    for (const [jobId, { at }] of this.recent) if (now - at > RECENT_MS) this.recent.delete(jobId);
    for (const [jobId, at] of this.own) if (now - at > OWN_TTL_MS) this.own.delete(jobId);
  }
}
