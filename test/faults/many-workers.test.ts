import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, eventually } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { startWorkerProcess, stopAll, type InferqProcess } from '../helpers/processes.js';
import { auditJobs, jobIdsOf } from '../helpers/queue-audit.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// uniqueRow repeats every 1,000 seeds: seeds 0..399 and 500..539 are all distinct.
const JOBS = 400;

describe('many worker processes on one queue', () => {
  let stack: TestStack;
  let redis: Redis;
  const workers: InferqProcess[] = [];

  beforeAll(async () => {
    stack = await createStack({ worker: false });
    redis = new Redis(REDIS_URL);
    const env = {
      REDIS_URL,
      QUEUE_PREFIX: stack.config.QUEUE_PREFIX,
      MODEL_DIR: 'models',
      // Few slots per process, so that neither worker can swallow the whole burst alone.
      WORKER_CONCURRENCY: '16',
      MAX_BATCH_DELAY_MS: '5',
    };
    // One at a time, so that afterAll can stop the first if the second fails to start.
    workers.push(await startWorkerProcess({ ...env, WORKER_NAME: 'worker-a' }));
    workers.push(await startWorkerProcess({ ...env, WORKER_NAME: 'worker-b' }));
  });

  afterAll(async () => {
    await stopAll(workers);
    redis?.disconnect();
    await stack?.close();
  });

  it('spreads 400 jobs over both workers and completes each exactly once', async () => {
    const ids = await Promise.all(
      Array.from({ length: JOBS }, async (_, i) => {
        const res = await stack.post('/v1/jobs', {
          model: 'breast-cancer',
          features: uniqueRow(i),
        });
        expect(res.status).toBe(202);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    expect(new Set(ids).size).toBe(JOBS);

    await eventually(
      async () => {
        const counts = await stack.api.deps.queue.getJobCounts('completed');
        return counts.completed === JOBS;
      },
      45_000,
      200,
    );

    const audit = await auditJobs(redis, stack.config.QUEUE_PREFIX, ids);
    const byWorker = new Map<string, number>();
    const internal = await jobIdsOf(redis, stack.config.QUEUE_PREFIX, ids);
    for (const [i, id] of ids.entries()) {
      const job = audit.get(id);
      expect(job?.finishedOn, `job ${id} finished`).toBeDefined();
      expect(job?.attemptsStarted, `job ${id} started once`).toBe(1);
      const result = JSON.parse(job?.returnvalue ?? 'null') as {
        jobId: string;
        results: unknown[];
      };
      expect(result.jobId).toBe(internal[i]);
      expect(result.results).toHaveLength(1);
      byWorker.set(job?.processedBy ?? '?', (byWorker.get(job?.processedBy ?? '?') ?? 0) + 1);
    }
    expect([...byWorker.keys()].sort()).toEqual(['worker-a', 'worker-b']);
    expect((byWorker.get('worker-a') ?? 0) + (byWorker.get('worker-b') ?? 0)).toBe(JOBS);

    // The queue's own record: every job completed (started once, above), none failed. The fast
    // lane writes no events, so the event stream tells nothing here.
    const completed = await redis.zrange(`${stack.config.QUEUE_PREFIX}:predict:completed`, 0, -1);
    expect(completed.filter((id) => internal.includes(id)).sort()).toEqual([...internal].sort());
    expect(await redis.zcard(`${stack.config.QUEUE_PREFIX}:predict:failed`)).toBe(0);
  });

  it('lets each waiting client read its own result through the API', async () => {
    const rows = Array.from({ length: 40 }, (_, i) => uniqueRow(500 + i));
    const answers = await Promise.all(
      rows.map((features) => stack.post('/v1/models/breast-cancer/predict', { features })),
    );
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as {
      id: string;
      cached: boolean;
      probabilities: number[];
    }[];
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(rows.length);
    expect(bodies.every((b) => !b.cached && b.probabilities.length === 2)).toBe(true);
    const audit = await auditJobs(
      redis,
      stack.config.QUEUE_PREFIX,
      bodies.map((b) => b.id),
    );
    expect([...audit.values()].every((a) => a.processedBy?.startsWith('worker-'))).toBe(true);
  });
});
