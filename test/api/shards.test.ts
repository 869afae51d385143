import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseChunkJobId } from '../../src/shared/batches.js';
import { jobShard } from '../../src/api/jobs/public-ids.js';
import { startWorker, type WorkerHandle } from '../../src/worker/worker.js';
import { eventually, testLogger } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();
const PREDICT = '/v1/models/breast-cancer/predict';
const SHARDS = 3;
const TOKEN = 'shard-admin-token';

describe('QUEUE_SHARDS=3 on one Redis, one worker on every shard', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack({ env: { QUEUE_SHARDS: String(SHARDS), ADMIN_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('runs online predictions on every shard, and answers repeats from the cache', async () => {
    const rows = Array.from({ length: 24 }, (_, i) => uniqueRow(70_000 + i));
    // One at a time: each is a lone job on the shard its input picks.
    const first: Response[] = [];
    for (const features of rows) first.push(await stack.post(PREDICT, { features }));
    expect(first.map((r) => r.status)).toEqual(rows.map(() => 200));
    const bodies = await Promise.all(first.map(json));
    expect(bodies.every((b) => b.cached === false)).toBe(true);
    const perShard = await Promise.all(
      stack.api.deps.queue.shards.map(async (q) => (await q.getJobCounts('completed')).completed),
    );
    for (const n of perShard) expect(n).toBeGreaterThan(0);
    const again = await json(await stack.post(PREDICT, { features: rows[5] }));
    expect(again).toMatchObject({ cached: true, label: bodies[5].label });
  });

  it('finds an async job on its shard for status, SSE and results', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        features: uniqueRow(71_000 + i),
      });
      expect(res.status).toBe(202);
      ids.push((await json(res)).id);
    }
    const shards = new Set(
      await Promise.all(ids.map(async (id) => jobShard((await stack.refOf(id)).jobId))),
    );
    expect(shards.size).toBeGreaterThan(1);
    for (const id of ids) {
      const view = await json(await stack.request(`/v1/jobs/${id}?wait=10`));
      expect(view).toMatchObject({ id, status: 'completed' });
    }
    const events = await (await stack.request(`/v1/jobs/${ids[1]}/events`)).text();
    expect(events).toMatch(/event: result/);
  });

  it('deals a batch its chunks over every shard and streams results in order', async () => {
    const items = Array.from({ length: 7 }, (_, i) => ({
      id: `r${i}`,
      features: uniqueRow(72_000 + i),
    }));
    const body = items.map((item) => JSON.stringify(item)).join('\n');
    const res = await stack.request(`/v1/batches?model=breast-cancer`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
    expect(res.status).toBe(202);
    const { id } = await json(res);
    const view = await json(await stack.request(`/v1/batches/${id}?wait=20`));
    expect(view).toMatchObject({ status: 'completed', completed: 7, failed: 0 });
    const lines = (await (await stack.request(`/v1/batches/${id}/results`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; status: string });
    expect(lines.map((l) => l.id)).toEqual(items.map((i) => i.id));
  });

  it('shows every shard queue in Bull Board and counts one worker', async () => {
    const res = await stack.request('/admin/queues/api/queues', {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);
    const names = (await json(res)).queues.map((q: { name: string }) => q.name).sort();
    expect(names).toEqual([
      's0-batch',
      's0-predict',
      's1-batch',
      's1-predict',
      's2-batch',
      's2-predict',
    ]);
    const ready = await json(await stack.request('/health/ready'));
    expect(ready).toMatchObject({ status: 'ready', workers: 1 });
  });
});

describe('QUEUE_SHARDS=3 without a worker, then a worker on one shard', () => {
  let stack: TestStack;
  let partial: WorkerHandle | undefined;

  beforeAll(async () => {
    stack = await createStack({
      worker: false,
      env: {
        QUEUE_SHARDS: String(SHARDS),
        MAX_QUEUE_DEPTH: '6',
        QUEUE_DEPTH_REFRESH_MS: '100',
        DEFAULT_WAIT_S: '0',
        BATCH_CHUNK_ROWS: '2',
      },
    });
  });
  afterAll(async () => {
    await partial?.close();
    await stack?.close();
  });

  const ids: string[] = [];

  it("deals a batch's chunks round every shard", async () => {
    const body = Array.from({ length: 7 }, (_, i) =>
      JSON.stringify({ features: uniqueRow(74_000 + i) }),
    ).join('\n');
    const res = await stack.request('/v1/batches?model=breast-cancer', {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
    expect(res.status).toBe(202);
    const { id } = await json(res);
    const waiting = await Promise.all(
      stack.api.deps.batchQueue.shards.map(
        async (q) =>
          (await q.getJobs(['waiting', 'prioritized'])).filter(
            (j) => parseChunkJobId(j.id ?? '')?.batchId === id,
          ).length,
      ),
    );
    // 7 rows in chunks of 2: 4 chunks, dealt round the 3 shards.
    expect(waiting.reduce((a, b) => a + b, 0)).toBe(4);
    expect(waiting.every((n) => n >= 1)).toBe(true);
    expect((await stack.request(`/v1/batches/${id}`, { method: 'DELETE' })).status).toBeLessThan(
      300,
    );
  });

  it('counts queued jobs of every shard against MAX_QUEUE_DEPTH', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        features: uniqueRow(73_000 + i),
      });
      expect(res.status).toBe(202);
      ids.push((await json(res)).id);
    }
    const perShard = await Promise.all(stack.api.deps.queue.shards.map((q) => q.count()));
    expect(perShard.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(await stack.api.deps.queue.count()).toBe(6);
    // The queue gauge adds every shard up.
    const metrics = await (await stack.request('/metrics')).text();
    expect(metrics).toMatch(/^inferq_queue_jobs\{state="waiting"\} 6$/m);
    await eventually(async () => {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        features: uniqueRow(73_100),
      });
      return res.status === 429 && (await json(res)).error.code === 'queue_full';
    }, 5000);
  });

  it('cancels a queued job on whichever shard holds it', async () => {
    const id = ids.pop() as string;
    const ref = await stack.refOf(id);
    const res = await stack.request(`/v1/jobs/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(
      await stack.api.deps.queue.shards[jobShard(ref.jobId)]!.getJob(ref.jobId),
    ).toBeUndefined();
    expect(await json(await stack.request(`/v1/jobs/${id}`))).toMatchObject({
      status: 'cancelled',
    });
  });

  it('lets a worker with WORKER_SHARDS=1 run shard 1 alone', async () => {
    partial = await startWorker({
      config: { ...stack.config, WORKER_SHARDS: '1' },
      logger: testLogger('worker'),
    });
    const shardOf = async (id: string) => jobShard((await stack.refOf(id)).jobId);
    const onOne: string[] = [];
    const elsewhere: string[] = [];
    for (const id of ids) ((await shardOf(id)) === 1 ? onOne : elsewhere).push(id);
    // The inputs' hashes pick their shards (fixed inputs, so a fixed split).
    expect(onOne.length).toBeGreaterThan(0);
    expect(elsewhere.length).toBeGreaterThan(0);
    for (const id of onOne) {
      expect(await json(await stack.request(`/v1/jobs/${id}?wait=10`))).toMatchObject({
        status: 'completed',
      });
    }
    for (const id of elsewhere) {
      expect(await json(await stack.request(`/v1/jobs/${id}`))).toMatchObject({ status: 'queued' });
    }
    expect(partial.workers).toHaveLength(1);
  });
});
