import { Worker as Thread } from 'node:worker_threads';
import type { Job, Worker } from 'bullmq';
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { clusterOptions, redisOptions } from '../../shared/redis.js';
import type { LockConnection, LockEvent, LockRequest, LockThreadInit } from './lock-protocol.js';

/** Options of LockKeeper. */
export interface LockKeeperOptions {
  config: Config;
  logger: Logger;
  /** Period of the renewal rounds, milliseconds; default a fifth of WORKER_LOCK_MS. */
  renewMs?: number;
  /** How long an adopted job waits for its hold (LockThreadInit.confirmMs). */
  confirmMs?: number;
}

// Plain data only: functions (retry strategies) are added again on the thread.
function plain(options: object): Record<string, unknown> {
  return JSON.parse(JSON.stringify(options)) as Record<string, unknown>;
}

function hostPort(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
}

/** The lock thread's connection: fail fast (a failed round is retried by the next one). */
export function lockConnection(config: Config): LockConnection {
  const name = 'inferq-worker-locks';
  if (config.REDIS_CLUSTER_NODES.length > 0) {
    return {
      kind: 'cluster',
      nodes: config.REDIS_CLUSTER_NODES.map(hostPort),
      options: plain(clusterOptions('producer', config.REDIS_URL, name)),
    };
  }
  const options = plain(redisOptions('producer', name));
  if (config.REDIS_SENTINELS.length > 0) {
    options.sentinels = config.REDIS_SENTINELS.map(hostPort);
    options.name = config.REDIS_SENTINEL_NAME;
  }
  return { kind: 'single', url: config.REDIS_URL, options };
}

/**
 * Keeps the BullMQ locks of running jobs alive from a thread of its own (BullMQ's own renewal,
 * `skipLockRenewal`, is off): a saturated CPU can hold the main event loop up for seconds, which
 * must not hand running jobs to other workers. Jobs are held from their 'active' event; while
 * the worker is late (holds arriving long after their fetch) the thread also adopts the jobs
 * fetched with this worker's tokens, which may not have reached that event yet. The main loop
 * beats once a second; when it has not beaten for WORKER_HUNG_MS the thread stops renewing, so a
 * hung worker still loses its jobs.
 */
export class LockKeeper {
  private thread: Thread;
  private readonly held = new Map<string, LockRequest & { type: 'hold' }>();
  private readonly watched: (LockRequest & { type: 'watch' })[] = [];
  private readonly alive = new Set<string>();
  private readonly beat: NodeJS.Timeout;
  private closed = false;
  private lastErrorAt = 0;
  private readonly init: LockThreadInit;

  constructor(private readonly options: LockKeeperOptions) {
    const { config } = options;
    this.init = {
      connection: lockConnection(config),
      lockMs: config.WORKER_LOCK_MS,
      renewMs: options.renewMs ?? Math.max(100, Math.floor(config.WORKER_LOCK_MS / 5)),
      hungMs: config.WORKER_HUNG_MS,
      ...(options.confirmMs ? { confirmMs: options.confirmMs } : {}),
    };
    this.thread = this.start();
    this.beat = setInterval(() => this.post({ type: 'beat' }), 1000);
    this.beat.unref();
  }

  private start(): Thread {
    const thread = new Thread(new URL('./lock-thread.js', import.meta.url), {
      workerData: this.init,
    });
    thread.on('message', (event: LockEvent) => this.onEvent(event));
    thread.on('error', (err) => this.options.logger.error({ err }, 'lock thread crashed'));
    thread.on('exit', () => {
      if (this.closed) return;
      // Without it every running job would lose its lock: start another with the same holds
      // (a second later, so that a thread that cannot start does not spin).
      setTimeout(() => {
        if (this.closed) return;
        this.thread = this.start();
        for (const msg of [...this.watched, ...this.held.values()]) this.thread.postMessage(msg);
        for (const key of this.alive) this.thread.postMessage({ type: 'alive', key });
      }, 1000).unref();
    });
    return thread;
  }

  private onEvent(event: LockEvent): void {
    const { logger } = this.options;
    if (event.type === 'lost') {
      this.held.delete(`${event.queueKey}${event.jobId}`);
      logger.warn(
        { jobId: event.jobId, queue: event.queueKey },
        'job lock lost while running; another worker may run the job again',
      );
    } else if (event.type === 'hung') {
      logger.error(
        { silentMs: event.sinceMs },
        'event loop stalled past WORKER_HUNG_MS; job locks left to lapse',
      );
    } else if (Date.now() - this.lastErrorAt > 10_000) {
      this.lastErrorAt = Date.now();
      logger.warn({ err: event.message }, 'lock renewal failed; retrying');
    }
  }

  // Requests of one turn of the event loop leave together, once its callbacks have run: a
  // postMessage costs the main thread tens of microseconds (the copy and the thread's wake-up),
  // and the jobs that end in one turn (one read of Redis replies) each release their hold.
  private outbox: LockRequest[] = [];

  private post(msg: LockRequest): void {
    if (this.closed) return;
    if (this.outbox.push(msg) > 1) return;
    setImmediate(() => {
      const msgs = this.outbox;
      this.outbox = [];
      if (!this.closed) this.thread.postMessage(msgs);
    });
  }

  /**
   * Renews the lock of job `jobId` of the queue with BullMQ key `queueKey` until released;
   * `fetchedAt` (BullMQ `processedOn`) tells the thread how late the worker is.
   */
  hold(queueKey: string, jobId: string, token: string, fetchedAt?: number): void {
    const msg = { type: 'hold', queueKey, jobId, token, fetchedAt } as const;
    this.held.set(`${queueKey}${jobId}`, msg);
    this.post(msg);
  }

  /** Lets the thread adopt jobs of the queue that worker `workerId` fetched (see LockRequest). */
  watch(queueKey: string, workerId: string): void {
    const msg = { type: 'watch', queueKey, workerId } as const;
    this.watched.push(msg);
    this.post(msg);
  }

  /** Keeps `key` set with the lock TTL, renewed with the locks, until forgotten or the worker hangs. */
  keepAlive(key: string): void {
    this.alive.add(key);
    this.post({ type: 'alive', key });
  }

  /** Stops renewing an alive key. */
  forgetAlive(key: string): void {
    this.alive.delete(key);
    this.post({ type: 'unalive', key });
  }

  /**
   * Stops renewing: the job has left the active list, or, `abandoned`, it left this worker
   * without BullMQ recording it (its lock must lapse; the thread does not adopt it again).
   */
  release(queueKey: string, jobId: string, abandoned = false): void {
    const key = `${queueKey}${jobId}`;
    const token = abandoned ? this.held.get(key)?.token : undefined;
    this.held.delete(key);
    this.post({ type: 'release', queueKey, jobId, ...(token ? { token } : {}) });
  }

  /**
   * Wraps a BullMQ processor of the queue at `queueKey` so that the lock of a job whose end
   * BullMQ could not record is let go. BullMQ gives up on a job when its moveToFinished fails
   * with an error it does not take for a lost connection (EPIPE, or "Stream isn't writeable"
   * while Redis restarts): no 'completed' or 'failed' comes, and a lock renewed for ever would
   * keep the job active for ever. Once the processor has settled, a hold still there after
   * WORKER_LOCK_MS is released; the lock then lapses and BullMQ's stalled check gives the job
   * to a worker again (at least once, never lost).
   */
  processor<D, R>(
    queueKey: string,
    run: (job: Job<D, R>) => Promise<R>,
  ): (job: Job<D, R>) => Promise<R> {
    return async (job) => {
      try {
        return await run(job);
      } finally {
        if (job.id) this.releaseLater(queueKey, job.id, job.token);
      }
    };
  }

  // Releases, WORKER_LOCK_MS from now, the hold of `token` if it is still there (see processor);
  // the timer keeps the ids only, not the job with its data.
  private releaseLater(queueKey: string, jobId: string, token: string | undefined): void {
    const key = `${queueKey}${jobId}`;
    const timer = setTimeout(() => {
      if (this.held.get(key)?.token !== token) return;
      this.options.logger.warn(
        { jobId, queue: queueKey },
        "job's end not recorded (Redis failed as it finished); its lock is left to lapse",
      );
      this.release(queueKey, jobId, true);
    }, this.init.lockMs);
    timer.unref();
  }

  /** Stops the thread; call after the BullMQ Workers have closed. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.beat);
    await this.thread.terminate();
  }
}

/** Has `locks` keep the lock of every job `worker` takes, from its fetch until it has left. */
export function keepLocks(
  worker: Worker,
  locks: LockKeeper,
  queueKey: string,
  logger: Logger,
): void {
  locks.watch(queueKey, worker.id);
  // 'active' comes as soon as the fetch returns, before the processor starts.
  worker.on('active', (job) => {
    if (job.id && job.token) locks.hold(queueKey, job.id, job.token, job.processedOn);
  });
  worker.on('completed', (job) => job.id && locks.release(queueKey, job.id));
  worker.on('failed', (job) => job?.id && locks.release(queueKey, job.id));
  worker.on('stalled', (jobId) =>
    logger.warn(
      { jobId, queue: queueKey },
      'took back a job whose worker stopped renewing its lock',
    ),
  );
}
