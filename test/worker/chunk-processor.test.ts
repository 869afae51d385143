import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkJobId, type BatchChunkJobData } from '../../src/shared/batches.js';
import { ModelRepository } from '../../src/shared/model-repository.js';
import { chunkRunRows, createBatchProcessor } from '../../src/worker/chunks/chunk-processor.js';
import { ModelPool } from '../../src/worker/inference/model-pool.js';
import { InferenceThread } from '../../src/worker/inference/sessions.js';
import { REDIS_URL, testLogger } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { createStack, type TestStack } from '../helpers/stack.js';

/** A response body as untyped JSON (tests read it loosely). */
async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}

const FIXTURES = { MODEL_DIR: 'test/fixtures/models', BATCH_CHUNK_ROWS: '20' };

function ndjson(rows: number[][]): string {
  return rows.map((r, i) => JSON.stringify({ id: `r${i}`, features: r })).join('\n');
}

function upload(s: TestStack, body: string, query: string): Promise<Response> {
  return s.request(`/v1/batches?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
  });
}

async function results(s: TestStack, id: string): Promise<any[]> {
  const text = await (await s.request(`/v1/batches/${id}/results`)).text();
  return text
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l));
}

describe('batch-chunk processor, run by hand on jobs nobody consumes', () => {
  let idle: TestStack;
  let thread: InferenceThread;
  let run: ReturnType<typeof createBatchProcessor>;
  let redis: Redis;

  beforeAll(async () => {
    idle = await createStack({ worker: false, env: FIXTURES });
    const logger = testLogger('worker');
    thread = new InferenceThread({ logger });
    const pool = new ModelPool({ thread, logger, maxBatchSize: 64, maxBatchDelayMs: 1 });
    await pool.loadAll(await ModelRepository.scan('test/fixtures/models', 3));
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    run = createBatchProcessor({ pool, redis, config: idle.config, logger });
  });

  afterAll(async () => {
    redis?.disconnect();
    await thread?.close();
    await idle?.close();
  });

  async function chunkJob(id: string, n: number): Promise<Job<BatchChunkJobData>> {
    const job = await idle.api.deps.batches.queue.getJob(chunkJobId(id, n));
    if (!job) throw new Error(`no job for chunk ${n}`);
    return job as Job<BatchChunkJobData>;
  }

  it('counts a chunk once when BullMQ delivers it twice (at-least-once)', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => uniqueRow(i + 1));
    const { id } = await json(upload(idle, ndjson(rows), 'model=breast-cancer'));
    const job = await chunkJob(id, 0);
    const first = await run(job);
    expect(first).toMatchObject({ batchId: id, chunk: 0, rows: 20, finished: false });
    const again = await run(job);
    expect(again.rows).toBe(0);
    const view = await json(idle.request(`/v1/batches/${id}`));
    expect(view).toMatchObject({ status: 'running', completed: 20, failed: 0, pending: 10 });
    const last = await run(await chunkJob(id, 1));
    expect(last).toMatchObject({ rows: 10, finished: true });
    const done = await json(idle.request(`/v1/batches/${id}`));
    expect(done).toMatchObject({ status: 'completed', completed: 30, pending: 0 });
    const lines = await results(idle, id);
    expect(lines.map((l) => l.id)).toEqual(rows.map((_, i) => `r${i}`));
  });

  it('fails only the rows whose output is not finite, and the batch still completes', async () => {
    // nan-model: prediction = sqrt(x0), NaN when x0 < 0
    const rows = Array.from({ length: 20 }, (_, i) => [i % 7 === 3 ? -1 - i : i + 0.25, 0, 0, 0]);
    const { id } = await json(upload(idle, ndjson(rows), 'model=nan-model'));
    const out = await run(await chunkJob(id, 0));
    expect(out).toMatchObject({ rows: 20, finished: true });
    const lines = await results(idle, id);
    lines.forEach((line, i) => {
      if (i % 7 === 3) {
        expect(line).toMatchObject({ index: i, id: `r${i}`, status: 'failed' });
        expect(line.error.code).toBe('model_output_invalid');
      } else {
        expect(line).toMatchObject({ index: i, status: 'completed' });
        expect(line.prediction).toBeCloseTo(Math.sqrt(i + 0.25), 5);
      }
    });
    const view = await json(idle.request(`/v1/batches/${id}`));
    expect(view).toMatchObject({ status: 'completed', completed: 17, failed: 3, pending: 0 });
  });

  it('after a chunk has run, cancelling keeps its results and cancels the rest', async () => {
    const rows = Array.from({ length: 45 }, (_, i) => uniqueRow(500 + i));
    const { id } = await json(upload(idle, ndjson(rows), 'model=breast-cancer'));
    await run(await chunkJob(id, 0));
    expect((await idle.request(`/v1/batches/${id}`, { method: 'DELETE' })).status).toBe(204);
    const view = await json(idle.request(`/v1/batches/${id}`));
    expect(view).toMatchObject({
      status: 'cancelled',
      completed: 20,
      failed: 25,
      cancelled: 25,
      pending: 0,
    });
    const lines = await results(idle, id);
    expect(lines.map((l) => l.status)).toEqual([
      ...Array<string>(20).fill('completed'),
      ...Array<string>(25).fill('cancelled'),
    ]);
    expect(await idle.api.deps.batches.queue.getJob(chunkJobId(id, 1))).toBeUndefined();
  });
});

describe('inference runs of a batch chunk', () => {
  let idle: TestStack;
  let thread: InferenceThread;
  let redis: Redis;

  afterAll(async () => {
    redis?.disconnect();
    await thread?.close();
    await idle?.close();
  });

  it("are BATCH_RUN_ROWS rows, not the model's online micro-batch size", async () => {
    // The fixture's model.json caps online micro-batches at 64 rows.
    idle = await createStack({
      worker: false,
      env: { MODEL_DIR: 'test/fixtures/models', BATCH_CHUNK_ROWS: '300', BATCH_RUN_ROWS: '128' },
    });
    const logger = testLogger('worker');
    thread = new InferenceThread({ logger });
    const runs: number[] = [];
    const pool = new ModelPool({
      thread,
      logger,
      maxBatchSize: 64,
      maxBatchDelayMs: 1,
      onBatch: (_model, rows) => runs.push(rows),
    });
    const models = await ModelRepository.scan('test/fixtures/models', 3);
    expect(models.resolve('breast-cancer').batching?.maxBatchSize).toBe(64);
    await pool.loadAll(models);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const run = createBatchProcessor({ pool, redis, config: idle.config, logger });
    const rows = Array.from({ length: 300 }, (_, i) => uniqueRow(9_000 + i));
    const { id } = await json(upload(idle, ndjson(rows), 'model=breast-cancer'));
    const job = await idle.api.deps.batches.queue.getJob(chunkJobId(id, 0));
    expect(await run(job as Job<BatchChunkJobData>)).toMatchObject({ rows: 300, finished: true });
    expect(runs).toEqual([128, 128, 44]);
    const lines = await results(idle, id);
    expect(lines.map((l) => l.status)).toEqual(rows.map(() => 'completed'));
  });

  it('are fewer rows when the rows are so wide that a run would pass 16 MB of input', () => {
    expect(chunkRunRows(4096, 30)).toBe(4096);
    // A 224x224x3 image flattened: 27 rows of float32 fit in 16 MB.
    expect(chunkRunRows(4096, 224 * 224 * 3)).toBe(27);
    expect(chunkRunRows(4096, 10_000_000)).toBe(1);
    expect(chunkRunRows(100, 30)).toBe(100);
  });
});

describe('Redis cost of a batch', () => {
  let server: RedisServer;
  let stack: TestStack;

  beforeAll(async () => {
    server = await startRedisServer();
    stack = await createStack({ env: { REDIS_URL: server.url } });
  });

  afterAll(async () => {
    await stack?.close();
    await server?.dispose();
  });

  it('costs at most 0.05 Redis commands per row for 10,000 rows, BullMQ included', async () => {
    const admin = new Redis(server.url);
    try {
      const rows = Array.from({ length: 10_000 }, (_, i) => uniqueRow(i + 1_000_000));
      await admin.config('RESETSTAT');
      const res = await upload(stack, ndjson(rows), 'model=breast-cancer');
      const { id } = await json(res);
      await json(stack.request(`/v1/batches/${id}`, { headers: { prefer: 'wait=30' } }));
      expect(await results(stack, id)).toHaveLength(10_000);
      const stats = await admin.info('commandstats');
      const calls = [...stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)]
        .map(([, name, n]) => [name ?? '', Number(n)] as const)
        .filter(([name]) => name !== 'config' && name !== 'info');
      const total = calls.reduce((sum, [, n]) => sum + n, 0);
      const top = calls.sort((a, b) => b[1] - a[1]).slice(0, 8);
      console.log(
        `Redis commands for a 10,000-row batch: ${total} (${(total / 10_000).toFixed(4)} per row); top: ${top.map(([c, n]) => `${c}=${n}`).join(' ')}`,
      );
      expect(total / 10_000).toBeLessThanOrEqual(0.05);
    } finally {
      admin.disconnect();
    }
  });
});

describe('cache lookups of a batch whose rows do not hit', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack({ env: { ...FIXTURES, BATCH_CHUNK_ROWS: '1000' } });
  });

  afterAll(async () => {
    await stack?.close();
  });

  /** Row `n` of the batch: distinct in float32 (an integer-valued feature is n). */
  const row = (n: number) => uniqueRow(n).map((v, i) => (i === 23 ? n : v));

  it('narrow to a sample at the head of each chunk, and widen again when the sample hits', async () => {
    // Predicted online before: 6,010 (chunk 6, inside its sample), 6,900 (chunk 6, after it)
    // and 7,500 (chunk 7, after its sample, once the batch had shown too few hits).
    const seen = [6_010, 6_900, 7_500];
    const online = new Map<number, number[]>();
    for (const n of seen) {
      const res = await json(stack.post('/v1/models/breast-cancer/predict', { features: row(n) }));
      online.set(n, res.probabilities);
    }
    const rows = Array.from({ length: 8_000 }, (_, n) => row(n));
    const { id } = await json(upload(stack, ndjson(rows), 'model=breast-cancer'));
    const view = await json(stack.request(`/v1/batches/${id}`, { headers: { prefer: 'wait=30' } }));
    expect(view).toMatchObject({ status: 'completed', completed: 8_000, failed: 0 });
    const lines = await results(stack, id);
    expect(lines.filter((l) => l.cached).map((l) => l.index)).toEqual([6_010, 6_900]);
    // Not looked up, inferred again: the same result.
    for (const n of seen) expect(lines[n].probabilities).toEqual(online.get(n));
  });
});
