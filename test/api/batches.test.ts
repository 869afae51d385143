import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, REDIS_URL } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

/** A response body as untyped JSON (tests read it loosely). */
async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}

// Small chunks so that 50 items make several chunk jobs.
const CHUNK_ENV = { BATCH_CHUNK_ROWS: '20' };

let stack: TestStack; // with a worker
let idle: TestStack; // no worker until a test starts one; tight upload limits
let redis: Redis;

beforeAll(async () => {
  [stack, idle] = await Promise.all([
    createStack({ env: CHUNK_ENV }),
    createStack({
      worker: false,
      env: { ...CHUNK_ENV, MAX_BATCH_ROWS: '100', MAX_BODY_BYTES: '4096', MAX_LINE_BYTES: '1024' },
    }),
  ]);
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  redis?.disconnect();
  await Promise.all([stack?.close(), idle?.close()]);
});

const rowsOf = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => uniqueRow(seed + i));
const ndjson = (rows: number[][], ids = false) =>
  rows
    .map((r, i) => JSON.stringify(ids ? { id: `r${i}`, features: r } : { features: r }))
    .join('\n') + '\n';

function upload(
  s: TestStack,
  body: string | ReadableStream<Uint8Array>,
  query = 'model=breast-cancer',
): Promise<Response> {
  return s.request(`/v1/batches?${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
    duplex: 'half',
  });
}

async function lines(res: Response): Promise<any[]> {
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

async function waitDone(s: TestStack, id: string): Promise<any> {
  const res = await s.request(`/v1/batches/${id}`, { headers: { prefer: 'wait=20' } });
  return json(res);
}

async function leftovers(s: TestStack): Promise<{ staged: string[]; jobs: number }> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(
      cursor,
      'MATCH',
      `${s.config.QUEUE_PREFIX}:batch:*`,
      'COUNT',
      1000,
    );
    // Batch records, staged rows and results (BullMQ's own queue keys come and go).
    keys.push(...found.filter((k) => /:batch:[0-9a-f]{8}-/.test(k)));
    cursor = next;
  } while (cursor !== '0');
  keys.sort();
  const counts = await s.api.deps.batches.queue.getJobCounts(
    'waiting',
    'prioritized',
    'active',
    'delayed',
  );
  return { staged: keys, jobs: Object.values(counts).reduce((a, b) => a + b, 0) };
}

describe('POST /v1/batches (JSON)', () => {
  it('runs 50 items with ids and returns results in order, equal to online predictions', async () => {
    const rows = rowsOf(50, 10_000);
    const items = rows.map((features, i) => ({ id: `item-${i}`, features }));
    const res = await stack.post('/v1/batches', { model: 'breast-cancer', items });
    expect(res.status).toBe(202);
    const body = await json(res);
    expect(body).toMatchObject({ status: 'queued', total: 50 });
    expect(body.links).toEqual({
      self: `/v1/batches/${body.id}`,
      results: `/v1/batches/${body.id}/results`,
    });
    expect(res.headers.get('location')).toBe(body.links.self);

    const done = await waitDone(stack, body.id);
    expect(done).toMatchObject({ status: 'completed', model: 'breast-cancer', version: '1.1.0' });
    expect(done).toMatchObject({ total: 50, completed: 50, failed: 0, pending: 0 });
    expect(typeof done.finishedAt).toBe('string');

    const results = await lines(await stack.request(body.links.results));
    expect(results.map((r) => r.index)).toEqual(rows.map((_, i) => i));
    expect(results.map((r) => r.id)).toEqual(items.map((it) => it.id));
    const online = await json(stack.post('/v1/models/breast-cancer/predict', { instances: rows }));
    results.forEach((r, i) => {
      expect(r.status).toBe('completed');
      expect(r.prediction).toBe(online.predictions[i].prediction);
      expect(r.label).toBe(online.predictions[i].label);
      expect(r.probabilities[1]).toBeCloseTo(online.predictions[i].probabilities[1], 6);
    });
  });

  it('rejects a wrong feature count with 422 naming the item, and queues nothing', async () => {
    const items = [{ features: uniqueRow(1) }, { features: uniqueRow(2).slice(1) }];
    const res = await stack.post('/v1/batches', { model: 'breast-cancer', items });
    expect(res.status).toBe(422);
    const { error } = await json(res);
    expect(error.code).toBe('validation_error');
    expect(error.details[0]).toEqual({
      path: 'items[1].features',
      message: 'expected 30 features, got 29',
    });
  });

  it('rejects an empty batch with 422 and an unknown model with 404', async () => {
    const empty = await stack.post('/v1/batches', { model: 'breast-cancer', items: [] });
    expect(empty.status).toBe(422);
    const unknown = await stack.post('/v1/batches', { model: 'nope', items: [{ features: [1] }] });
    expect(unknown.status).toBe(404);
    expect((await json(unknown)).error.code).toBe('model_not_found');
  });

  it('refuses more than 10,000 JSON items with 422, pointing to NDJSON', async () => {
    const items = Array.from({ length: 10_001 }, () => ({ features: [] }));
    const res = await stack.post('/v1/batches', { model: 'breast-cancer', items });
    expect(res.status).toBe(422);
    const { error } = await json(res);
    expect(error.details[0].path).toBe('items');
    expect(error.message).toMatch(/NDJSON/);
  });

  it('keeps MAX_BODY_BYTES for JSON bodies (413)', async () => {
    const items = rowsOf(40, 1).map((features) => ({ features }));
    const res = await idle.post('/v1/batches', { model: 'breast-cancer', items });
    expect(res.status).toBe(413);
  });
});

describe('POST /v1/batches (NDJSON)', () => {
  it('reads an NDJSON upload with a pinned version, skipping blank lines and CRLF endings', async () => {
    const rows = rowsOf(45, 20_000);
    const text = rows.map((r) => JSON.stringify({ features: r })).join('\r\n\n');
    const res = await upload(stack, text, 'model=breast-cancer&version=1.0.0');
    expect(res.status).toBe(202);
    const { id, total } = await json(res);
    expect(total).toBe(45);
    const done = await waitDone(stack, id);
    expect(done).toMatchObject({
      status: 'completed',
      version: '1.0.0',
      completed: 45,
      pending: 0,
    });
    const results = await lines(await stack.request(`/v1/batches/${id}/results`));
    expect(results).toHaveLength(45);
    expect(
      results.every((r, i) => r.index === i && r.status === 'completed' && r.id === undefined),
    ).toBe(true);
  });

  it('is bounded by MAX_BATCH_ROWS and MAX_LINE_BYTES, not MAX_BODY_BYTES', async () => {
    const rows = rowsOf(90, 30_000); // ~30 KB, over the 4 KB MAX_BODY_BYTES of this stack
    const res = await upload(idle, ndjson(rows));
    expect(res.status).toBe(202);
    expect((await json(res)).total).toBe(90);
    const over = await upload(idle, ndjson(rowsOf(101, 1)));
    expect(over.status).toBe(413);
    expect((await json(over)).error.details[0].line).toBe(101);
  });

  it('rejects a bad line 3 with 422 naming it, leaving no staged keys and no jobs', async () => {
    const before = await leftovers(stack);
    const rows = rowsOf(60, 40_000).map((r) => JSON.stringify({ features: r }));
    rows[2] = JSON.stringify({ features: [...uniqueRow(3).slice(0, 29), 'x'] });
    const res = await upload(stack, rows.join('\n'));
    expect(res.status).toBe(422);
    const { error } = await json(res);
    expect(error.code).toBe('validation_error');
    expect(error.details[0]).toMatchObject({ line: 3, path: 'features[29]' });
    expect(error.message).toMatch(/^line 3: /);
    expect(await leftovers(stack)).toEqual(before);
  });

  it('rejects a line that is not JSON with 422 naming it, after chunks were queued: none is left', async () => {
    const before = await leftovers(stack);
    const rows = rowsOf(50, 50_000).map((r) => JSON.stringify({ features: r }));
    rows[44] = '{"features": [1, 2,';
    const res = await upload(stack, rows.join('\n'));
    expect(res.status).toBe(422);
    const { error } = await json(res);
    expect(error.details[0].line).toBe(45);
    expect(error.details[0].message).toMatch(/not valid JSON/);
    // Chunks 0 and 1 were queued while the upload ran; a worker may still hold one of them.
    await eventually(async () => (await leftovers(stack)).jobs === before.jobs);
    expect(await leftovers(stack)).toEqual(before);
  });

  it('refuses a line over MAX_LINE_BYTES without reading the rest of the upload', async () => {
    let pulled = 0;
    const chunk = new TextEncoder().encode('1,'.repeat(8192));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(
          new TextEncoder().encode(`${JSON.stringify({ features: uniqueRow(1) })}\n{"features": [`),
        );
      },
      pull(controller) {
        pulled += chunk.length;
        // 50 MB if the server kept reading
        if (pulled > 50 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await upload(idle, body);
    expect(res.status).toBe(422);
    const { error } = await json(res);
    expect(error.details[0]).toEqual({
      line: 2,
      message: 'line is longer than 1024 bytes (MAX_LINE_BYTES)',
    });
    expect(pulled).toBeLessThan(256 * 1024);
  });

  it('rejects an upload without a model, or with no items', async () => {
    const noModel = await upload(stack, ndjson(rowsOf(2, 1)), '');
    expect(noModel.status).toBe(422);
    expect((await json(noModel)).error.details[0].path).toBe('model');
    const empty = await upload(stack, '\n\n');
    expect(empty.status).toBe(422);
  });
});

describe('batch progress and results', () => {
  it('long-polls the status: answers with progress after the wait, at once when the batch ends', async () => {
    const res = await upload(idle, ndjson(rowsOf(5, 60_000)));
    const { id } = await json(res);
    const started = Date.now();
    const pending = await json(idle.request(`/v1/batches/${id}?wait=1`));
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(pending).toMatchObject({
      status: 'queued',
      total: 5,
      completed: 0,
      failed: 0,
      pending: 5,
    });
    expect(pending.finishedAt).toBeUndefined();

    const quick = await upload(stack, ndjson(rowsOf(5, 61_000)));
    const t0 = Date.now();
    const done = await waitDone(stack, (await json(quick)).id);
    expect(done.status).toBe('completed');
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('sends SSE progress events and a final done event, then ends the stream', async () => {
    const res = await upload(stack, ndjson(rowsOf(50, 70_000)));
    const { id } = await json(res);
    const events = await stack.request(`/v1/batches/${id}/events`);
    expect(events.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await events.text(); // resolves only because the stream ends
    const parsed = text
      .split('\n\n')
      .filter((b) => b.includes('data:'))
      .map((block) => ({
        event: /event: (.*)/.exec(block)?.[1],
        data: JSON.parse(/data: (.*)/.exec(block)?.[1] ?? 'null'),
      }));
    expect(parsed.length).toBeGreaterThanOrEqual(2);
    expect(parsed.slice(0, -1).every((e) => e.event === 'progress')).toBe(true);
    const last = parsed.at(-1)!;
    expect(last.event).toBe('done');
    expect(last.data).toMatchObject({ id, status: 'completed', completed: 50, pending: 0 });
    for (const e of parsed) expect(e.data.completed + e.data.failed + e.data.pending).toBe(50);
  });

  it('cancels the chunks not started: status cancelled, cancelled result lines, no jobs left', async () => {
    const before = await leftovers(idle);
    const rows = rowsOf(45, 80_000);
    const res = await upload(idle, ndjson(rows, true));
    const { id } = await json(res);
    expect((await leftovers(idle)).jobs).toBe(before.jobs + 3);
    const del = await idle.request(`/v1/batches/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const view = await json(idle.request(`/v1/batches/${id}`));
    expect(view).toMatchObject({
      status: 'cancelled',
      total: 45,
      completed: 0,
      failed: 45,
      cancelled: 45,
      pending: 0,
    });
    expect(typeof view.finishedAt).toBe('string');
    const results = await lines(await idle.request(`/v1/batches/${id}/results`));
    expect(results).toHaveLength(45);
    expect(results[7]).toEqual({ index: 7, id: 'r7', status: 'cancelled' });
    expect(results.every((r) => r.status === 'cancelled')).toBe(true);
    expect((await leftovers(idle)).jobs).toBe(before.jobs);
    expect((await idle.request(`/v1/batches/${id}`, { method: 'DELETE' })).status).toBe(204);
  });

  it('queues one job per chunk at priority 5, or the priority asked', async () => {
    const queue = idle.api.deps.batches.queue;
    const byDefault = await json(upload(idle, ndjson(rowsOf(45, 85_000))));
    const asked = await json(
      upload(idle, ndjson(rowsOf(21, 86_000)), 'model=breast-cancer&priority=2'),
    );
    const jobs = await Promise.all([0, 1, 2].map((n) => queue.getJob(`b-${byDefault.id}-${n}`)));
    expect(jobs.map((j) => j?.opts.priority)).toEqual([5, 5, 5]);
    expect(jobs.map((j) => j?.name)).toEqual(['batch-chunk', 'batch-chunk', 'batch-chunk']);
    expect((await queue.getJob(`b-${asked.id}-1`))?.opts.priority).toBe(2);
    expect(await queue.getJob(`b-${asked.id}-2`)).toBeUndefined();
    for (const id of [byDefault.id, asked.id]) {
      expect((await idle.request(`/v1/batches/${id}`, { method: 'DELETE' })).status).toBe(204);
    }
  });

  it('answers 404 batch_not_found for unknown ids and 409 when cancelling a completed batch', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const path of ['', '/results', '/events']) {
      const res = await stack.request(`/v1/batches/${unknown}${path}`);
      expect(res.status).toBe(404);
      expect((await json(res)).error.code).toBe('batch_not_found');
    }
    expect((await stack.request('/v1/batches/not-an-id')).status).toBe(404);
    const res = await upload(stack, ndjson(rowsOf(3, 90_000)));
    const { id } = await json(res);
    await waitDone(stack, id);
    const del = await stack.request(`/v1/batches/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(409);
    expect((await json(del)).error.code).toBe('job_not_cancellable');
  });

  it('serves a row predicted online before from the cache inside a batch', async () => {
    const seen = uniqueRow(123_456);
    const online = await json(stack.post('/v1/models/breast-cancer/predict', { features: seen }));
    const rowsBefore = stack.worker!.batchSizes.reduce((a, b) => a + b, 0);
    const res = await upload(stack, ndjson([uniqueRow(123_457), seen]));
    const { id } = await json(res);
    await waitDone(stack, id);
    expect(stack.worker!.batchSizes.reduce((a, b) => a + b, 0) - rowsBefore).toBe(1);
    const [fresh, cached] = await lines(await stack.request(`/v1/batches/${id}/results`));
    expect(fresh.cached).toBeUndefined();
    expect(cached).toMatchObject({ index: 1, status: 'completed', cached: true });
    expect(cached.probabilities).toEqual(online.probabilities);
  });

  it('streams results while the batch runs: the response starts before any worker exists', async () => {
    const rows = rowsOf(70, 100_000);
    const { id } = await json(upload(idle, ndjson(rows, true)));
    const res = await idle.request(`/v1/batches/${id}/results`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const reading = lines(res);
    const view = await json(idle.request(`/v1/batches/${id}`));
    expect(view.status).toBe('queued');
    await idle.startWorker();
    const results = await reading;
    expect(results).toHaveLength(70);
    expect(results.map((r) => r.id)).toEqual(rows.map((_, i) => `r${i}`));
    expect(results.every((r) => r.status === 'completed')).toBe(true);
  });
});
