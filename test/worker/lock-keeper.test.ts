import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepLocks, LockKeeper } from '../../src/worker/locks/lock-keeper.js';
import { eventually, REDIS_URL, removeKeys, testConfig, testLogger } from '../helpers/env.js';

const LOCK_MS = 1500;
const QUEUE = 'locks';

/** Holds the event loop, as a starved CPU or a long synchronous task would. */
function blockLoop(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // spin
  }
}

describe('LockKeeper: job locks renewed off the event loop', () => {
  let redis: Redis;
  const prefixes: string[] = [];

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  afterAll(async () => {
    redis?.disconnect();
    for (const p of prefixes) await removeKeys(p);
  });

  /**
   * Runs one job whose processor blocks the event loop for `blockMs`, then reports whether the
   * job still held its lock (same token, live TTL) right after the block.
   */
  async function lockAfterBlock(
    blockMs: number,
    env: Record<string, string>,
    withKeeper: boolean,
  ): Promise<{ held: boolean; stalled: number }> {
    const config = testConfig({ WORKER_LOCK_MS: String(LOCK_MS), ...env });
    prefixes.push(config.QUEUE_PREFIX);
    const queue = new Queue(QUEUE, { connection: { url: REDIS_URL }, prefix: config.QUEUE_PREFIX });
    const locks = withKeeper
      ? new LockKeeper({ config, logger: testLogger(), renewMs: 300 })
      : undefined;
    let held = false;
    let stalled = 0;
    let checked: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (checked = resolve));
    const worker = new Worker(
      QUEUE,
      async (job: Job, token?: string) => {
        // Give the keeper's thread a first round before the loop is held.
        await new Promise((r) => setTimeout(r, 400));
        blockLoop(blockMs);
        const lockKey = `${config.QUEUE_PREFIX}:${QUEUE}:${job.id}:lock`;
        const [value, ttl] = await Promise.all([redis.get(lockKey), redis.pttl(lockKey)]);
        held = value === token && ttl > 0;
        checked();
      },
      {
        connection: { url: REDIS_URL },
        prefix: config.QUEUE_PREFIX,
        lockDuration: LOCK_MS,
        stalledInterval: 60_000,
        skipLockRenewal: withKeeper,
      },
    );
    // A lost lock makes BullMQ's completion fail with an 'error' event; expected here.
    worker.on('error', () => undefined);
    worker.on('stalled', () => stalled++);
    if (locks) keepLocks(worker, locks, `${config.QUEUE_PREFIX}:${QUEUE}:`, testLogger());
    await queue.add('slow', {});
    await done;
    await worker.close(true);
    await locks?.close();
    await queue.close();
    return { held, stalled };
  }

  it('keeps the lock of a job whose event loop is blocked for longer than the lock', async () => {
    const { held } = await lockAfterBlock(3 * LOCK_MS, {}, true);
    expect(held).toBe(true);
  }, 20_000);

  it('loses that lock with BullMQ’s own renewal on the event loop (why the keeper exists)', async () => {
    const { held } = await lockAfterBlock(3 * LOCK_MS, {}, false);
    expect(held).toBe(false);
  }, 20_000);

  it('stops renewing once the event loop has been silent for WORKER_HUNG_MS', async () => {
    const { held } = await lockAfterBlock(5 * LOCK_MS, { WORKER_HUNG_MS: '1000' }, true);
    expect(held).toBe(false);
  }, 20_000);

  /**
   * A queue, a worker that runs nothing (jobs are fetched by hand, so one can be active with no
   * 'active' hold behind it) and a keeper with locks of `lockMs`; `run` gets them and they are
   * closed after it.
   */
  async function handFetching(
    lockMs: number,
    run: (t: {
      queueKey: string;
      queue: Queue;
      worker: Worker;
      locks: LockKeeper;
    }) => Promise<void>,
    confirmMs?: number,
  ): Promise<void> {
    const config = testConfig({ WORKER_LOCK_MS: String(lockMs) });
    prefixes.push(config.QUEUE_PREFIX);
    const connection = { url: REDIS_URL };
    const queue = new Queue(QUEUE, { connection, prefix: config.QUEUE_PREFIX });
    const worker = new Worker(QUEUE, null, {
      connection,
      prefix: config.QUEUE_PREFIX,
      lockDuration: lockMs,
      skipLockRenewal: true,
    });
    worker.on('error', () => undefined);
    const locks = new LockKeeper({ config, logger: testLogger(), renewMs: 300, confirmMs });
    try {
      await run({ queueKey: `${config.QUEUE_PREFIX}:${QUEUE}:`, queue, worker, locks });
    } finally {
      await worker.close(true);
      await locks.close();
      await queue.close();
    }
  }

  it('adopts a job its worker fetched but has not started while the event loop is held', async () => {
    const lockMs = 4000;
    await handFetching(lockMs, async ({ queueKey, queue, worker, locks }) => {
      locks.watch(queueKey, worker.id);
      await queue.add('fetched', {});
      const token = `${worker.id}:by-hand`;
      const job = await worker.getNextJob(token);
      blockLoop(3 * lockMs);
      const lockKey = `${queueKey}${job.id}:lock`;
      const [value, ttl] = await Promise.all([redis.get(lockKey), redis.pttl(lockKey)]);
      expect(value).toBe(token);
      expect(ttl).toBeGreaterThan(0);
    });
  }, 30_000);

  it('adopts them too while holds arrive long after their fetch (a lagging worker)', async () => {
    const lockMs = 2000;
    await handFetching(lockMs, async ({ queueKey, queue, worker, locks }) => {
      locks.watch(queueKey, worker.id);
      await queue.add('fetched', {});
      const token = `${worker.id}:by-hand`;
      const job = await worker.getNextJob(token);
      // Another job's hold, 5 s after its fetch: the worker is late.
      locks.hold(queueKey, 'elsewhere', 'none', Date.now() - 5000);
      await new Promise((r) => setTimeout(r, 3 * lockMs));
      const lockKey = `${queueKey}${job?.id}:lock`;
      expect(await redis.get(lockKey)).toBe(token);
    });
  }, 30_000);

  it('lets go of an adopted job the worker never takes up (its fetch’s reply was lost)', async () => {
    const lockMs = 1500;
    const confirmMs = 2000;
    await handFetching(
      lockMs,
      async ({ queueKey, queue, worker, locks }) => {
        locks.watch(queueKey, worker.id);
        await queue.add('lost', {});
        await queue.add('late', {});
        // Both fetched for this worker, as a fetch whose reply never came back leaves a job.
        const lost = await worker.getNextJob(`${worker.id}:lost`);
        const late = await worker.getNextJob(`${worker.id}:late`);
        // Another job's hold, 5 s after its fetch: the worker is late, adoption is on.
        locks.hold(queueKey, 'elsewhere', 'none', Date.now() - 5000);
        await new Promise((r) => setTimeout(r, lockMs + 500));
        const lostLock = `${queueKey}${lost?.id}:lock`;
        const lateLock = `${queueKey}${late?.id}:lock`;
        // Adopted: renewed past their first lock period.
        expect(await redis.get(lostLock)).toBe(`${worker.id}:lost`);
        expect(await redis.get(lateLock)).toBe(`${worker.id}:late`);
        // The worker takes up one of them (its hold comes, late); the other never.
        locks.hold(queueKey, late?.id ?? '', `${worker.id}:late`, Date.now() - 3000);
        await eventually(async () => (await redis.get(lostLock)) === null, confirmMs + 3 * lockMs);
        // Not adopted again while its job is still in the active list, and the held one is kept.
        await new Promise((r) => setTimeout(r, lockMs));
        expect(await redis.get(lostLock)).toBeNull();
        expect(await redis.lpos(`${queueKey}active`, lost?.id ?? '')).not.toBeNull();
        expect(await redis.get(lateLock)).toBe(`${worker.id}:late`);
      },
      confirmMs,
    );
  }, 30_000);

  it('lets the lock lapse of a job whose end BullMQ could not record', async () => {
    const lockMs = 1500;
    const config = testConfig({ WORKER_LOCK_MS: String(lockMs) });
    prefixes.push(config.QUEUE_PREFIX);
    const connection = { url: REDIS_URL };
    const queueKey = `${config.QUEUE_PREFIX}:${QUEUE}:`;
    const queue = new Queue(QUEUE, { connection, prefix: config.QUEUE_PREFIX });
    const locks = new LockKeeper({ config, logger: testLogger(), renewMs: 300 });
    let ran: (id: string) => void = () => undefined;
    const running = new Promise<string>((resolve) => (ran = resolve));
    const worker = new Worker(
      QUEUE,
      locks.processor(queueKey, async (job: Job) => {
        // Its hash gone, BullMQ's moveToFinished fails and BullMQ gives up on the job with an
        // 'error', as when Redis fails under it: no 'completed', no 'failed'.
        await redis.del(`${queueKey}${job.id}`);
        ran(job.id ?? '');
        return 1;
      }),
      {
        connection,
        prefix: config.QUEUE_PREFIX,
        lockDuration: lockMs,
        stalledInterval: 60_000,
        skipLockRenewal: true,
      },
    );
    const errors: string[] = [];
    worker.on('error', (err) => errors.push(err.message));
    keepLocks(worker, locks, queueKey, testLogger());
    try {
      await queue.add('unrecorded', {});
      const id = await running;
      const lockKey = `${queueKey}${id}:lock`;
      // Renewed a while after the processor settled (its end may still be on its way)...
      await new Promise((r) => setTimeout(r, lockMs));
      expect(await redis.get(lockKey)).not.toBeNull();
      // ...then let go, so that it lapses and the stalled check can hand the job on.
      await eventually(async () => (await redis.get(lockKey)) === null, 4 * lockMs);
      expect(await redis.lpos(`${queueKey}active`, id)).not.toBeNull();
      expect(errors.join(' ')).toMatch(/Missing key/);
    } finally {
      await worker.close(true);
      await locks.close();
      await queue.close();
    }
  }, 30_000);
});
