import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINISH_CHUNK, START_CHUNK } from '../../src/shared/batch-scripts.js';
import { chunkJobId } from '../../src/shared/batches.js';
import { eventually, REDIS_URL } from '../helpers/env.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// Issue 14, requirement 1: chunks run while the upload still arrives, and a later bad line (or a
// client gone mid-upload) cancels every chunk already queued; nothing of it is ever served.

/** A response body as untyped JSON (tests read it loosely). */
async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}

const CHUNK_ROWS = 20;

let stack: TestStack; // with a worker
let idle: TestStack; // no worker: chunks stay queued
let redis: Redis;

beforeAll(async () => {
  [stack, idle] = await Promise.all([
    createStack({ env: { BATCH_CHUNK_ROWS: String(CHUNK_ROWS) } }),
    createStack({ worker: false, env: { BATCH_CHUNK_ROWS: String(CHUNK_ROWS) } }),
  ]);
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  redis?.disconnect();
  await Promise.all([stack?.close(), idle?.close()]);
});

/** A row unique in float32: an integer-valued feature (area mean) carries `k`. */
function row(k: number): number[] {
  const r = [...BREAST_CANCER_ROW];
  r[3] = k;
  return r;
}

const lines = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) =>
    JSON.stringify({ id: `r${from + i}`, features: row(from + i) }),
  )
    .join('\n')
    .concat('\n');

/** An upload body the test feeds piece by piece; `end` closes it. */
function controlledBody() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  return {
    stream,
    send: (text: string) => controller.enqueue(new TextEncoder().encode(text)),
    end: () => controller.close(),
  };
}

function upload(s: TestStack, body: ReadableStream<Uint8Array>): Promise<Response> {
  return s.request('/v1/batches?model=breast-cancer', {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
    duplex: 'half',
  });
}

/** Every key of a batch of `s` (records, staged rows, results; not BullMQ's queue keys). */
async function batchKeys(s: TestStack): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(
      cursor,
      'MATCH',
      `${s.config.QUEUE_PREFIX}:batch:*`,
      'COUNT',
      1000,
    );
    found.push(...keys.filter((k) => /:batch:[0-9a-f]{8}-/.test(k)));
    cursor = next;
  } while (cursor !== '0');
  return found.sort();
}

/** The id of the one batch record of `s` not in `known`, once it exists. */
async function newBatchId(s: TestStack, known: Set<string>): Promise<string> {
  let id: string | undefined;
  await eventually(async () => {
    const records = (await batchKeys(s))
      .map((k) => /:batch:([0-9a-f-]{36})$/.exec(k)?.[1])
      .filter((x): x is string => x !== undefined && !known.has(x));
    id = records[0];
    return id !== undefined;
  });
  known.add(id!);
  return id!;
}

async function queuedJobs(s: TestStack): Promise<number> {
  const counts = await s.api.deps.batches.queue.getJobCounts(
    'waiting',
    'prioritized',
    'active',
    'delayed',
  );
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

const known = new Set<string>();

describe('NDJSON uploads run while they arrive', () => {
  it('runs the first chunks before the upload ends, hidden from GET until it is sealed', async () => {
    const body = controlledBody();
    const answer = upload(stack, body.stream);
    body.send(lines(0, 45));
    const id = await newBatchId(stack, known);
    const record = stack.config.QUEUE_PREFIX + `:batch:${id}`;
    // Two full chunks of 20 were handed to the worker; both end before the upload does.
    await eventually(async () => (await redis.hget(record, 'c:1')) === 'done');
    expect(await redis.hget(record, 'status')).toBe('uploading');
    expect(await redis.ttl(record)).toBeLessThanOrEqual(30);
    expect((await stack.request(`/v1/batches/${id}`)).status).toBe(404);

    body.send(lines(45, 15));
    body.end();
    const res = await answer;
    expect(res.status).toBe(202);
    expect(await json(res)).toMatchObject({ id, status: 'queued', total: 60 });
    expect(await redis.ttl(record)).toBeGreaterThan(30);

    const results = (await (await stack.request(`/v1/batches/${id}/results`)).text())
      .split('\n')
      .filter((l) => l)
      .map((l) => JSON.parse(l));
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(results.map((r) => r.id)).toEqual(Array.from({ length: 60 }, (_, i) => `r${i}`));
    expect(results.every((r) => r.status === 'completed')).toBe(true);
    const view = await json(stack.request(`/v1/batches/${id}?wait=10`));
    expect(view).toMatchObject({ status: 'completed', total: 60, completed: 60, pending: 0 });
  });

  it('marks a batch completed at once when every chunk ended before the upload did', async () => {
    const body = controlledBody();
    const answer = upload(stack, body.stream);
    body.send(lines(100, 40));
    const id = await newBatchId(stack, known);
    const record = stack.config.QUEUE_PREFIX + `:batch:${id}`;
    await eventually(async () => (await redis.hget(record, 'c:1')) === 'done');
    body.end();
    const res = await answer;
    expect(res.status).toBe(202);
    const view = await json(stack.request(`/v1/batches/${id}`));
    expect(view).toMatchObject({ status: 'completed', total: 40, completed: 40, pending: 0 });
    expect(typeof view.finishedAt).toBe('string');
  });

  it('rejects a bad line 46 after two chunks ran: 422 naming it, their results deleted, 404 after', async () => {
    const before = await batchKeys(stack);
    const body = controlledBody();
    const answer = upload(stack, body.stream);
    body.send(lines(200, 45));
    const id = await newBatchId(stack, known);
    const prefix = stack.config.QUEUE_PREFIX;
    await eventually(async () => (await redis.exists(`${prefix}:batch:${id}:out:1`)) === 1);

    body.send(`${JSON.stringify({ features: row(1).slice(1) })}\n`);
    body.send(lines(300, 10));
    body.end();
    const res = await answer;
    expect(res.status).toBe(422);
    const { error } = await json(res);
    expect(error.code).toBe('validation_error');
    expect(error.details[0]).toEqual({
      line: 46,
      path: 'features',
      message: 'expected 30 features, got 29',
    });

    expect(await batchKeys(stack)).toEqual(before);
    await eventually(async () => (await queuedJobs(stack)) === 0);
    for (const path of ['', '/results', '/events']) {
      const got = await stack.request(`/v1/batches/${id}${path}`);
      expect(got.status).toBe(404);
      expect((await json(got)).error.code).toBe('batch_not_found');
    }
  });

  it('cancels every queued chunk when a line fails validation before any worker ran', async () => {
    const jobsBefore = await queuedJobs(idle);
    const before = await batchKeys(idle);
    const body = controlledBody();
    const answer = upload(idle, body.stream);
    body.send(lines(400, 60));
    const id = await newBatchId(idle, known);
    await eventually(async () => (await queuedJobs(idle)) === jobsBefore + 3);
    body.send('{"features": [1, 2,\n');
    body.end();
    const res = await answer;
    expect(res.status).toBe(422);
    expect((await json(res)).error.details[0].line).toBe(61);
    expect(await queuedJobs(idle)).toBe(jobsBefore);
    expect(await idle.api.deps.batches.queue.getJob(chunkJobId(id, 0))).toBeUndefined();
    expect(await batchKeys(idle)).toEqual(before);
  });

  it('a worker that finishes a chunk after its batch was rejected stores no result', async () => {
    const body = controlledBody();
    const answer = upload(idle, body.stream);
    body.send(lines(500, 20));
    const id = await newBatchId(idle, known);
    const keys = {
      record: `${idle.config.QUEUE_PREFIX}:batch:${id}`,
      input: `${idle.config.QUEUE_PREFIX}:batch:${id}:in:0`,
      output: `${idle.config.QUEUE_PREFIX}:batch:${id}:out:0`,
    };
    await eventually(async () => (await redis.exists(keys.input)) === 1);
    // A worker claims chunk 0 (as BullMQ's processor would) while the upload still runs ...
    const claim = await START_CHUNK.run(redis, [keys.record, keys.input], [0, Date.now()]);
    expect(claim).toBe('run');
    body.send('not json\n');
    body.end();
    expect((await answer).status).toBe(422);
    // ... and finishes it after the rejection: nothing is stored, the staged rows go.
    const finished = await FINISH_CHUNK.run(
      redis,
      [keys.record, keys.output, keys.input],
      [0, 20, 0, Date.now(), '{"index":0}\n', 60],
    );
    expect(finished).toBe(-1);
    expect(await redis.exists(keys.record, keys.output, keys.input)).toBe(0);
  });
});

describe('a client gone mid-upload', () => {
  it('cancels the chunks it queued: no jobs, no staged rows, no record', async () => {
    const port = await idle.api.listen(0, '127.0.0.1');
    const jobsBefore = await queuedJobs(idle);
    const before = await batchKeys(idle);
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    socket.write(
      'POST /v1/batches?model=breast-cancer HTTP/1.1\r\nHost: x\r\n' +
        'Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    socket.write(chunk(lines(600, 50)));
    const id = await newBatchId(idle, known);
    await eventually(async () => (await queuedJobs(idle)) === jobsBefore + 2);
    socket.destroy();

    await eventually(
      async () => (await redis.exists(`${idle.config.QUEUE_PREFIX}:batch:${id}`)) === 0,
    );
    await eventually(async () => (await queuedJobs(idle)) === jobsBefore);
    expect(await batchKeys(idle)).toEqual(before);
  });
});
