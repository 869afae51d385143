import { randomBytes } from 'node:crypto';
import {
  ADOPT,
  CLAIM,
  FINISH,
  HANDOFF,
  REAP,
  fastLaneKeys,
  parseFastElement,
  type FastElement,
  type FastLaneKeys,
} from '../../shared/fast-lane.js';
import { sendTogether } from '../../shared/corked.js';
import type { PredictJobData, PredictJobResult } from '../../shared/jobs.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../../shared/redis.js';
import type { LockKeeper } from '../locks/lock-keeper.js';
import { HeldWrites, type ResultWriter } from './cache-writer.js';

/** A job taken from the fast lane, shaped as much like a BullMQ job as the processor needs. */
export interface FastJob {
  id: string;
  data: PredictJobData;
  timestamp: number;
  processedOn: number;
}

/** Options of FastConsumer. */
export interface FastConsumerOptions {
  /** BullMQ's key of the shard's prediction queue, `<prefix>:predict:`. */
  queueKey: string;
  /** Commands: claim, finish, handoff, sweeps (shared with the rest of the worker). */
  redis: RedisClient;
  /** Opens the consumer's own connection for BLMOVE (it blocks while the lane is empty). */
  connect: () => RedisClient;
  /** Most jobs of the lane running at once in this process. */
  concurrency: number;
  /** WORKER_LOCK_MS. */
  lockMs: number;
  /** Period of the sweep for jobs of dead consumers, milliseconds. */
  sweepMs: number;
  /** How long and how many completed jobs are kept (RESULT_TTL_S, RESULT_MAX_JOBS). */
  keep: { ageMs: number; count: number };
  /**
   * Hold a job's cache entries and reply back for the pipeline that ends it (one round trip), with
   * this cache TTL (0: no cache); undefined: they are sent by `run` itself.
   */
  hold?: { cacheTtlS: number };
  locks: LockKeeper;
  /**
   * Runs a job: its cache entries and reply go to `writer` when given (held back), else they
   * have been sent when this resolves.
   */
  run: (job: FastJob, writer?: ResultWriter) => Promise<PredictJobResult>;
  /** Called once a job is recorded completed. */
  onCompleted?: (job: FastJob) => void;
  /**
   * BullMQ's own consumer of the queue, held back while this one takes `wait`'s backlog (ADOPT)
   * and let go once it finds none: left running, it takes half the backlog the costly way.
   */
  backlogPeer?: { hold(): void; release(): void };
  logger: Logger;
  /** Consumer name prefix (the worker's name). */
  name: string;
}

// Seconds a BLMOVE blocks before it is sent again (an idle consumer's only Redis work besides
// the sweep); close() does not wait for it: it drops the connection.
const BLOCK_S = 5;
// A job still running this long after it was taken is claimed: seen as running, under a lock.
const CLAIM_AFTER_MS = 200;
// Completed jobs past their age or count are dropped by one finish in this many.
const TRIM_EVERY = 16;

/**
 * Takes online jobs off one shard's fast lane (see shared/fast-lane.ts): BLMOVE hands it the
 * job with its payload, it runs it at once and claims it in parallel, and once the result has
 * gone to the waiter it records the job completed. A job that fails goes to BullMQ's own path.
 */
export class FastConsumer {
  readonly id: string;
  private readonly keys: FastLaneKeys;
  private blocking: RedisClient | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();
  private freed: (() => void) | undefined;
  /** Ids BLMOVE returned that are still in our transit list: a sweep of it keeps them. */
  private readonly unclaimed = new Set<string>();
  /** The blocking connection broke: a BLMOVE's reply may be lost, its job left in transit. */
  private broken = false;
  /** The queue is paused (Bull Board, Queue.pause): take nothing off the lane meanwhile. */
  private paused = false;
  /**
   * BullMQ's `wait` may hold jobs queued while no worker consumed the lane: take them (ADOPT)
   * before blocking on the lane. Set at start, when the lane stayed empty a whole BLMOVE, and by
   * the sweep when `wait` holds jobs.
   */
  private adopting = true;
  /** Whether `backlogPeer` is held back (see adopt). */
  private holding = false;
  private seq = 0;
  private finished = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(private readonly options: FastConsumerOptions) {
    this.id = `${options.name}:${randomBytes(4).toString('hex')}`;
    this.keys = fastLaneKeys(options.queueKey);
  }

  /** Registers the consumer (alive first, so no sweep takes it for dead) and starts taking jobs. */
  async start(): Promise<void> {
    const { redis, lockMs, locks, sweepMs } = this.options;
    await redis.set(this.keys.alive(this.id), '1', 'PX', lockMs);
    await redis.sadd(this.keys.consumers, this.id);
    this.paused = (await redis.hexists(this.keys.meta, 'paused')) === 1;
    locks.keepAlive(this.keys.alive(this.id));
    const blocking = this.options.connect();
    blocking.on('error', () => undefined);
    blocking.on('close', () => (this.broken = true));
    this.blocking = blocking;
    // A backlog on `wait` (jobs queued while no worker consumed the lane) is found before the
    // worker's BullMQ consumer starts, and held back from it (see backlogPeer).
    if (!this.paused) await this.adopt();
    this.loop = this.consume(blocking);
    this.sweeper = setInterval(() => void this.sweep(), sweepMs);
    this.sweeper.unref();
  }

  private async consume(blocking: RedisClient): Promise<void> {
    const { concurrency, logger } = this.options;
    while (!this.stopped) {
      while (this.running.size >= concurrency && !this.stopped) {
        await new Promise<void>((resolve) => (this.freed = resolve));
      }
      if (this.stopped) break;
      if (this.paused) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      if (this.broken && !(await this.recover())) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      if (this.adopting && (await this.adopt())) continue;
      let element: string | null = null;
      try {
        element = await blocking.blmove(
          this.keys.fast,
          this.keys.transit(this.id),
          'RIGHT',
          'LEFT',
          BLOCK_S,
        );
      } catch (err) {
        if (this.stopped) break;
        this.broken = true;
        logger.debug({ err }, 'fast lane: blocking read failed');
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      if (element !== null) this.take(element);
      else this.adopting = true;
    }
  }

  // Takes a job of BullMQ's `wait` that never met the lane (ADOPT); false when there was none
  // (or the lane holds jobs of its own): BLMOVE then waits. One a call, as BLMOVE hands out the
  // lane's: taking a free slot's worth at once ran jobs in bursts that ended together, and their
  // answers queued in the API (10,000 long-polls: p99 after the job's end 86–119 ms against 19–30).
  private async adopt(): Promise<boolean> {
    const { redis, logger } = this.options;
    const k = this.keys;
    let elements: unknown;
    try {
      elements = await ADOPT.run(
        redis,
        [k.wait, k.fast, k.meta, k.transit(this.id)],
        [k.queueKey, 1],
      );
    } catch (err) {
      // Its reply may be lost with jobs moved to our transit list: recovery gives them back.
      if (!this.stopped) this.broken = true;
      logger.debug({ err }, 'fast lane: adopting waiting jobs failed');
      elements = [];
    }
    const taken = Array.isArray(elements) ? (elements as string[]) : [];
    if (taken.length === 0) this.adopting = false;
    // BullMQ's consumer waits while the backlog goes the lane's way, and takes over what the
    // lane leaves (a job it started before, one with deduplication) or cannot reach meanwhile.
    if (taken.length > 0 !== this.holding) {
      this.holding = taken.length > 0;
      if (this.holding) this.options.backlogPeer?.hold();
      else this.options.backlogPeer?.release();
    }
    for (const element of taken) this.take(element);
    return taken.length > 0;
  }

  // Jobs BLMOVE moved to our transit list whose reply never came go to `wait`; run between two
  // BLMOVEs only, when every other element there is one this process knows of.
  private async recover(): Promise<boolean> {
    try {
      await this.reap([this.id, ...this.unclaimed]);
      this.broken = false;
      return true;
    } catch (err) {
      this.options.logger.debug({ err }, 'fast lane: transit recovery failed');
      return false;
    }
  }

  private take(element: string): void {
    const parsed = parseFastElement(element);
    if (!parsed) {
      this.options.logger.warn({ element: element.slice(0, 64) }, 'fast lane: malformed element');
      void this.options.redis.lrem(this.keys.transit(this.id), 1, element).catch(() => 0);
      return;
    }
    const task = this.runOne(element, parsed).finally(() => {
      this.running.delete(task);
      const freed = this.freed;
      this.freed = undefined;
      freed?.();
    });
    this.running.add(task);
  }

  private async runOne(element: string, parsed: FastElement): Promise<void> {
    const { redis, lockMs, locks, logger, keep, name } = this.options;
    const { id } = parsed;
    const k = this.keys;
    const takenAt = Date.now();
    const transit = k.transit(this.id);
    const jobKey = `${k.queueKey}${id}`;
    // '' while unclaimed; a token once claimed; undefined once the job is no longer ours.
    let token: string | undefined = '';
    let claiming: Promise<void> | undefined;
    this.unclaimed.add(id);
    const timer = setTimeout(
      () => {
        const mine = `${this.id}:${++this.seq}`;
        claiming = CLAIM.run(
          redis,
          [transit, jobKey, k.lock(id), k.active],
          [element, id, mine, lockMs, takenAt, name],
        ).then(
          (r) => {
            // Whatever the answer, the element has left our transit list.
            this.unclaimed.delete(id);
            token = r === 1 ? mine : undefined;
            if (r === 1) locks.hold(k.queueKey, id, mine, takenAt);
          },
          (err: unknown) => logger.debug({ err, jobId: id }, 'fast lane: claim failed'),
        );
      },
      Math.min(CLAIM_AFTER_MS, lockMs / 4),
    );
    const leaving = async () => {
      clearTimeout(timer);
      await claiming;
      return token;
    };
    const leaveKeys = [k.lock(id), jobKey, k.active, k.stalled, transit];
    try {
      const job: FastJob = {
        id,
        data: JSON.parse(parsed.data) as PredictJobData,
        timestamp: parsed.timestamp,
        processedOn: takenAt,
      };
      const hold = this.options.hold;
      const held = hold ? new HeldWrites(hold.cacheTtlS) : undefined;
      const result = await this.options.run(job, held);
      const mine = await leaving();
      const finishedOn = Date.now();
      const trim = ++this.finished % TRIM_EVERY === 1;
      // Not ours any more (cancelled, or taken back): only the held writes and reply still go.
      if (mine === undefined) {
        if (held) await this.finish(held);
        return;
      }
      const done = await this.finish(held, {
        keys: [...leaveKeys, k.completed],
        args: [
          mine,
          id,
          element,
          JSON.stringify(result),
          finishedOn,
          takenAt,
          name,
          trim ? finishedOn - keep.ageMs : '',
          keep.count,
          k.queueKey,
        ],
      });
      if (done === 1) this.options.onCompleted?.(job);
      if (mine) locks.release(k.queueKey, id);
    } catch (err) {
      const held = await leaving();
      if (held === undefined) return;
      // BullMQ's path runs it again with its attempts and backoff, and reports its last failure.
      logger.debug({ err, jobId: id }, 'fast lane: job failed; handed to the queue');
      await HANDOFF.run(redis, [...leaveKeys, k.wait, k.marker], [held, id, element]).catch(
        (e: unknown) => logger.warn({ err: e, jobId: id }, 'fast lane: handoff failed'),
      );
      if (held) locks.release(k.queueKey, id);
    } finally {
      this.unclaimed.delete(id);
    }
  }

  /**
   * Sends a job's held cache entries and reply, then FINISH when given, in one write (see
   * sendTogether): the waiter hears of the result before the job's bookkeeping. What FINISH
   * answered, if it ran.
   */
  private async finish(
    held: HeldWrites | undefined,
    script?: { keys: string[]; args: (string | number)[] },
  ): Promise<unknown> {
    const { redis } = this.options;
    const commands = held?.commands() ?? [];
    const writes = commands.length;
    if (script) commands.push(FINISH.command(script.keys, script.args));
    if (commands.length === 0) return undefined;
    const replies = sendTogether(redis, commands);
    // A held write that failed costs a future cache hit, or the waiter one read of the job.
    const written = Promise.all(replies.slice(0, writes).map((r) => r.catch(() => undefined)));
    if (!script) {
      await written;
      return undefined;
    }
    return FINISH.replyOf(replies[writes]!, redis, script.keys, script.args);
  }

  // Runs REAP on this shard: dead consumers' transit lists, and `own` (this consumer's id, then
  // the ids to keep) when given.
  private reap(own: string[] = []): Promise<unknown> {
    const k = this.keys;
    return REAP.run(this.options.redis, [k.consumers, k.wait, k.marker], [k.queueKey, ...own]);
  }

  // Jobs of consumers that died (alive key lapsed) go to `wait` for BullMQ's path; a paused
  // queue is noticed here too.
  private async sweep(): Promise<void> {
    if (this.options.redis.status !== 'ready') return;
    try {
      const { redis } = this.options;
      // Registered again each time: a sweep that took this consumer for dead (its alive key
      // lapsed in a long outage) dropped it, and a Redis that lost its data lost it too.
      const [paused, , waiting] = await Promise.all([
        redis.hexists(this.keys.meta, 'paused'),
        redis.sadd(this.keys.consumers, this.id),
        redis.llen(this.keys.wait),
      ]);
      this.paused = paused === 1;
      if (waiting > 0) this.adopting = true;
      const moved = await this.reap();
      if (typeof moved === 'number' && moved > 0) {
        this.options.logger.warn({ moved }, 'fast lane: took back the jobs of a dead worker');
      }
    } catch (err) {
      this.options.logger.debug({ err }, 'fast lane: sweep failed');
    }
  }

  /** Stops taking jobs, lets running ones finish, then leaves the lane. */
  async close(): Promise<void> {
    this.stopped = true;
    this.freed?.();
    clearInterval(this.sweeper);
    // A BLMOVE answered as the connection drops leaves its job in our transit list: the sweep
    // of our own list below gives it to `wait`.
    this.blocking?.disconnect();
    await this.loop;
    await Promise.all(this.running);
    const { redis, locks } = this.options;
    locks.forgetAlive(this.keys.alive(this.id));
    // Anything left in our transit list (a BLMOVE answered as we stopped) goes to `wait`.
    await this.reap([this.id]).catch(() => 0);
    await redis.srem(this.keys.consumers, this.id).catch(() => 0);
    await redis.del(this.keys.alive(this.id)).catch(() => 0);
  }
}
