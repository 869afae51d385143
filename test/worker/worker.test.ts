import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFailure } from '../../src/shared/errors.js';
import { PREDICT_JOB, type PredictJobData, type PredictJobResult } from '../../src/shared/jobs.js';
import { PREDICT_QUEUE } from '../../src/shared/keys.js';
import { startWorker, type WorkerHandle } from '../../src/worker/worker.js';
import { eventually, REDIS_URL, removeKeys, testConfig, testLogger } from '../helpers/env.js';
import { createStack, type TestStack } from '../helpers/stack.js';

type PredictQueue = Queue<PredictJobData, PredictJobResult>;
type PredictJob = Job<PredictJobData, PredictJobResult>;

const JOB_OPTIONS = { attempts: 3, backoff: { type: 'exponential', delay: 100 } } as const;

/** A nan-model job: prediction = sqrt(x0), NaN when x0 < 0. */
function nanJob(x0: number, overrides: Partial<PredictJobData> = {}): PredictJobData {
  return {
    model: 'nan-model',
    version: '1.0.0',
    rows: 1,
    values: [x0, 0, 0, 0],
    format: 'task',
    single: true,
    ...overrides,
  };
}

/** Polls a job until it has finished (completed or failed) and returns it fresh. */
async function finished(
  queue: PredictQueue,
  jobId: string,
  timeoutMs = 10_000,
): Promise<PredictJob> {
  let job: PredictJob | undefined;
  await eventually(async () => {
    job = await Job.fromId<PredictJobData, PredictJobResult>(queue, jobId);
    return job?.finishedOn !== undefined;
  }, timeoutMs);
  if (!job) throw new Error(`job ${jobId} vanished`);
  return job;
}

describe('worker on test/fixtures/models', () => {
  let stack: TestStack;
  let queue: PredictQueue;
  let worker: WorkerHandle;

  beforeAll(async () => {
    stack = await createStack({
      env: { MODEL_DIR: 'test/fixtures/models', JOB_ATTEMPTS: '3', JOB_BACKOFF_MS: '100' },
    });
    queue = stack.api.deps.queue.shards[0] as PredictQueue;
    if (!stack.worker) throw new Error('no worker');
    worker = stack.worker;
  });

  afterAll(async () => {
    await stack.close();
  });

  it('loads the fixture models, nan-model among them', () => {
    expect(worker.pool.keys()).toEqual(
      expect.arrayContaining(['breast-cancer@1.0.0', 'nan-model@1.0.0']),
    );
  });

  it('fails a NaN-producing job with model_output_invalid after one attempt while a good job beside it succeeds', async () => {
    const [bad, good] = await queue.addBulk([
      { name: PREDICT_JOB, data: nanJob(-1), opts: JOB_OPTIONS },
      { name: PREDICT_JOB, data: nanJob(16), opts: JOB_OPTIONS },
    ]);
    const goodJob = await finished(queue, good?.id ?? '');
    expect(await goodJob.getState()).toBe('completed');
    expect(goodJob.returnvalue?.results).toEqual([{ prediction: 4 }]);

    const badJob = await finished(queue, bad?.id ?? '');
    expect(await badJob.getState()).toBe('failed');
    expect(parseFailure(badJob.failedReason).code).toBe('model_output_invalid');
    expect(badJob.attemptsMade).toBe(1);
    // Longer than the first backoff: a retried job would have been attempted again by now.
    await new Promise((r) => setTimeout(r, 400));
    const later = await Job.fromId<PredictJobData, PredictJobResult>(queue, bad?.id ?? '');
    expect(await later?.getState()).toBe('failed');
    expect(later?.attemptsMade).toBe(1);
  });

  it('fails a job whose payload width does not match the model with validation_error, without retry', async () => {
    const job = await queue.add(PREDICT_JOB, nanJob(1, { values: [1, 2, 3] }), JOB_OPTIONS);
    const done = await finished(queue, job.id ?? '');
    expect(await done.getState()).toBe('failed');
    const failure = parseFailure(done.failedReason);
    expect(failure.code).toBe('validation_error');
    expect(failure.message).toContain('expected 4 values');
    expect(done.attemptsMade).toBe(1);
  });

  it('fails a job of 2 rows carrying one row of values with validation_error (no silent zero-padding)', async () => {
    const job = await queue.add(PREDICT_JOB, nanJob(1, { rows: 2, single: false }), JOB_OPTIONS);
    const done = await finished(queue, job.id ?? '');
    expect(parseFailure(done.failedReason).code).toBe('validation_error');
  });

  it('fails a job with a non-finite value with validation_error', async () => {
    // JSON turns NaN into null: what a hand-made producer would send.
    const job = await queue.add(
      PREDICT_JOB,
      nanJob(1, { values: [1, null as unknown as number, 0, 0] }),
      JOB_OPTIONS,
    );
    const done = await finished(queue, job.id ?? '');
    expect(parseFailure(done.failedReason).code).toBe('validation_error');
    expect(done.attemptsMade).toBe(1);
  });

  it('fails a job for an unknown version with version_not_found, without retry', async () => {
    const job = await queue.add(PREDICT_JOB, nanJob(1, { version: '9.9.9' }), JOB_OPTIONS);
    const done = await finished(queue, job.id ?? '');
    expect(await done.getState()).toBe('failed');
    const failure = parseFailure(done.failedReason);
    expect(failure.code).toBe('version_not_found');
    expect(failure.message).toContain('9.9.9');
    expect(done.attemptsMade).toBe(1);
  });

  it('answers a NaN-producing predict request with 500 model_output_invalid', async () => {
    const res = await stack.post('/v1/models/nan-model/predict', { features: [-2, 0, 0, 0] });
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('model_output_invalid');
  });

  it('micro-batches 64 concurrent distinct requests: some inference run holds more than one', async () => {
    const before = worker.batchSizes.length;
    const responses = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        stack.post('/v1/models/nan-model/predict', { features: [i + 1, i, 0, 0] }),
      ),
    );
    const bodies = (await Promise.all(responses.map((r) => r.json()))) as {
      prediction: number;
      cached: boolean;
    }[];
    expect(responses.map((r) => r.status)).toEqual(Array(64).fill(200));
    bodies.forEach((b, i) => {
      expect(b.cached).toBe(false);
      expect(b.prediction).toBeCloseTo(Math.sqrt(i + 1), 5);
    });
    const sizes = worker.batchSizes.slice(before);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(64);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
  });
});

describe('worker with a slow batch window (graceful shutdown)', () => {
  const config = (() => {
    const dir = mkdtempSync(join(tmpdir(), 'inferq-slow-'));
    const folder = join(dir, 'nan-model', '1.0.0');
    mkdirSync(folder, { recursive: true });
    copyFileSync('test/fixtures/models/nan-model/1.0.0/model.onnx', join(folder, 'model.onnx'));
    // A long window keeps jobs active inside the batcher long enough to close the worker meanwhile.
    writeFileSync(
      join(folder, 'model.json'),
      JSON.stringify({
        task: 'regression',
        batching: { maxBatchSize: 64, maxBatchDelayMs: 400, runWhenIdle: false },
      }),
    );
    return testConfig({ MODEL_DIR: dir });
  })();
  let queue: PredictQueue;
  let handle: WorkerHandle | undefined;

  beforeAll(async () => {
    queue = new Queue<PredictJobData, PredictJobResult>(PREDICT_QUEUE, {
      connection: { url: REDIS_URL },
      prefix: config.QUEUE_PREFIX,
    });
    queue.on('error', () => undefined);
    handle = await startWorker({ config, logger: testLogger('worker') });
  });

  afterAll(async () => {
    await handle?.close();
    await queue.close();
    await removeKeys(config.QUEUE_PREFIX);
    rmSync(config.MODEL_DIR, { recursive: true, force: true });
  });

  it('runs a NaN job and a good job in one batch and fails only the NaN one', async () => {
    const [bad, good] = await queue.addBulk([
      { name: PREDICT_JOB, data: nanJob(-4), opts: JOB_OPTIONS },
      { name: PREDICT_JOB, data: nanJob(9), opts: JOB_OPTIONS },
    ]);
    const goodJob = await finished(queue, good?.id ?? '');
    expect(goodJob.returnvalue?.results).toEqual([{ prediction: 3 }]);
    expect(goodJob.returnvalue?.batchSize).toBe(2);
    const badJob = await finished(queue, bad?.id ?? '');
    expect(parseFailure(badJob.failedReason).code).toBe('model_output_invalid');
    expect(badJob.attemptsMade).toBe(1);
  });

  it('lets every active job finish when closed while they run, and then takes no more', async () => {
    const w = handle;
    if (!w) throw new Error('no worker');
    let active = 0;
    w.worker.on('active', () => active++);
    const before = await queue.getJobCounts('completed', 'failed');
    const jobs = await queue.addBulk(
      Array.from({ length: 20 }, (_, i) => ({
        name: PREDICT_JOB,
        data: nanJob(i * i),
        opts: JOB_OPTIONS,
      })),
    );
    await eventually(() => active === 20, 5000, 5);
    const closing = w.close();
    handle = undefined;
    // Still inside the 400 ms batch window: nothing has completed yet.
    expect((await queue.getJobCounts('completed')).completed).toBe(before.completed);
    await closing;

    const counts = await queue.getJobCounts(
      'active',
      'waiting',
      'delayed',
      'failed',
      'completed',
      'prioritized',
    );
    expect(counts).toMatchObject({
      active: 0,
      waiting: 0,
      delayed: 0,
      prioritized: 0,
      failed: before.failed,
      completed: (before.completed ?? 0) + 20,
    });
    for (const [i, j] of jobs.entries()) {
      const done = await Job.fromId<PredictJobData, PredictJobResult>(queue, j.id ?? '');
      expect(done?.returnvalue?.results).toEqual([{ prediction: i }]);
      expect(done?.attemptsMade).toBe(1);
    }

    const late = await queue.add(PREDICT_JOB, nanJob(1), JOB_OPTIONS);
    await new Promise((r) => setTimeout(r, 300));
    expect(await late.getState()).toBe('waiting');
  });
});
