import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJob } from '../../src/api/jobs/job-record.js';
import { REDIS_URL, removeKeys, testConfig } from '../helpers/env.js';

const QUEUE = 'records';

describe('readJob: a job read in one script, as BullMQ reads it', () => {
  let redis: Redis;
  let queue: Queue;
  let worker: Worker;
  const { QUEUE_PREFIX: prefix } = testConfig();

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
    queue = new Queue(QUEUE, { connection: { url: REDIS_URL }, prefix });
    // Jobs are taken by hand (getNextJob), never by a processor.
    worker = new Worker(QUEUE, null, { connection: { url: REDIS_URL }, prefix, autorun: false });
  });

  afterAll(async () => {
    await worker.close();
    await queue.close();
    redis.disconnect();
    await removeKeys(prefix);
  });

  const read = (id: string) => readJob(redis, (name) => queue.toKey(name), id);
  const data = (n: number) => ({ model: 'm', version: '1.0.0', rows: 1, values: [n] });

  it('gives each state as BullMQ getState does, with the hash fields the API answers from', async () => {
    const waiting = await queue.add('predict', data(1), { jobId: 'r-waiting' });
    const delayed = await queue.add('predict', data(2), { jobId: 'r-delayed', delay: 60_000 });
    const prioritized = await queue.add('predict', data(3), { jobId: 'r-prio', priority: 3 });
    const token = 'by-hand';
    const active = await worker.getNextJob(token);
    expect(active?.id).toBe(waiting.id);
    const completed = await queue.add('predict', data(4), { jobId: 'r-done' });
    const failed = await queue.add('predict', data(5), { jobId: 'r-failed', attempts: 1 });
    // Taken in the order queued: the active one above, then these two.
    const first = await worker.getNextJob(token);
    await first?.moveToCompleted({ results: [], finishedAt: 1 }, token, false);
    const second = await worker.getNextJob(token);
    await second?.moveToFailed(new Error('boom'), token, false);
    expect([first?.id, second?.id]).toEqual([completed.id, failed.id]);

    for (const job of [waiting, delayed, prioritized, completed, failed]) {
      const record = await read(job.id!);
      expect(record?.state).toBe(await queue.getJobState(job.id!));
      expect(record?.data).toEqual(job.data);
      expect(record?.timestamp).toBe(job.timestamp);
    }
    expect((await read('r-waiting'))?.state).toBe('active');
    const done = await read('r-done');
    expect(done).toMatchObject({ state: 'completed', returnvalue: { results: [], finishedAt: 1 } });
    expect(done?.finishedOn).toBeGreaterThan(0);
    expect(done?.processedOn).toBeGreaterThan(0);
    expect(done?.attemptsMade).toBe(1);
    const gone = await read('r-failed');
    expect(gone).toMatchObject({ state: 'failed', failedReason: 'boom', attemptsMade: 1 });
    expect(gone?.returnvalue).toBeUndefined();
    expect(await read('r-missing')).toBeUndefined();
  });
});
