import { createServer, type Server } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferqClient, InferqError, isAccepted, type BatchItem } from '../../src/client/index.js';
import { BREAST_CANCER_ROW, parityFixture, uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

const API_KEY = 'client-test-key';

let stack: TestStack; // with a worker
let idle: TestStack; // no worker (jobs stay queued), API keys required
let client: InferqClient;
let idleClient: InferqClient;
let idleUrl: string;

beforeAll(async () => {
  [stack, idle] = await Promise.all([
    createStack({ env: { BATCH_CHUNK_ROWS: '50' } }),
    createStack({ worker: false, env: { API_KEYS: API_KEY } }),
  ]);
  const [port, idlePort] = await Promise.all([
    stack.api.listen(0, '127.0.0.1'),
    idle.api.listen(0, '127.0.0.1'),
  ]);
  client = new InferqClient({ url: `http://127.0.0.1:${port}/` });
  idleUrl = `http://127.0.0.1:${idlePort}`;
  idleClient = new InferqClient({ url: idleUrl, apiKey: API_KEY });
});

afterAll(async () => {
  await Promise.all([stack?.close(), idle?.close()]);
});

/** Resolves with the InferqError `promise` rejects with (fails the test if it resolves). */
async function failure(promise: Promise<unknown>): Promise<InferqError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InferqError);
  return err as InferqError;
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('InferqClient: models and online prediction', () => {
  it('lists the models and reads one version’s metadata', async () => {
    const { models } = await client.listModels();
    const bc = models.find((m) => m.name === 'breast-cancer');
    expect(bc).toMatchObject({ default: '1.1.0', task: 'classification' });
    expect(bc?.versions).toEqual(['1.1.0', '1.0.0']);
    const meta = await client.getModel('breast-cancer', '1.0.0');
    expect(meta).toMatchObject({ name: 'breast-cancer', version: '1.0.0', default: '1.1.0' });
    expect(meta.inputs[0]?.shape).toEqual([-1, 30]);
    expect((await client.getModel('diabetes')).task).toBe('regression');
  });

  it('predicts one instance and many, in input order, with a pinned version', async () => {
    const one = await client.predict('breast-cancer', BREAST_CANCER_ROW);
    if (isAccepted(one)) throw new Error('expected a result');
    expect(one).toMatchObject({ model: 'breast-cancer', version: '1.1.0', label: 'malignant' });
    const many = await client.predict('breast-cancer', [uniqueRow(11), BREAST_CANCER_ROW], {
      version: '1.0.0',
    });
    if (isAccepted(many)) throw new Error('expected a result');
    expect(many.version).toBe('1.0.0');
    expect(many.predictions).toHaveLength(2);
    expect(many.predictions[1]).toMatchObject({ label: 'malignant' });
  });

  it('returns a 202 job for respond-async and long-polls it to its result', async () => {
    const accepted = await client.predict('breast-cancer', uniqueRow(4242), { async: true });
    expect(isAccepted(accepted)).toBe(true);
    const job = await client.getJob(accepted.id, { wait: 20 });
    expect(job).toMatchObject({ id: accepted.id, status: 'completed', model: 'breast-cancer' });
    expect(job.result).toHaveProperty('probabilities');
  });

  it('submits an idempotent job with a priority and waits for it', async () => {
    const row = uniqueRow(5151);
    const first = await client.submitJob('breast-cancer', row, {
      priority: 2,
      idempotencyKey: `client-${Date.now()}`,
    });
    expect(first.status).toMatch(/queued|active/);
    const job = await client.waitForJob(first.id, { pollS: 5 });
    expect(job.status).toBe('completed');
  });

  it('follows a job through its SSE events to the result', async () => {
    const { id } = await client.submitJob('breast-cancer', { features: uniqueRow(6161) });
    const events = await collect(client.jobEvents(id));
    expect(events[0]?.event).toBe('status');
    const last = events.at(-1);
    expect(last?.event).toBe('result');
    if (last?.event !== 'result') throw new Error('no result');
    expect(last.data).toMatchObject({ id, status: 'completed' });
  });

  it('cancels a queued job, and refuses to cancel it twice with job_not_cancellable', async () => {
    const { id } = await idleClient.submitJob('breast-cancer', uniqueRow(7171));
    await idleClient.cancelJob(id);
    expect((await idleClient.getJob(id)).status).toBe('cancelled');
    const err = await failure(idleClient.cancelJob(id));
    expect(err).toMatchObject({ status: 409, code: 'job_not_cancellable' });
  });
});

describe('InferqClient: errors', () => {
  it('throws validation_error with details for 29 features', async () => {
    const err = await failure(client.predict('breast-cancer', BREAST_CANCER_ROW.slice(1)));
    expect(err).toMatchObject({ status: 422, code: 'validation_error' });
    expect(err.message).toContain('expected 30 features, got 29');
    expect(err.details?.[0]).toMatchObject({ path: 'features' });
    expect(err.requestId).toBeTruthy();
  });

  it('throws model_not_found, job_not_found and batch_not_found with status 404', async () => {
    expect(await failure(client.getModel('no-such-model'))).toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
    expect(await failure(client.getJob('no-such-job'))).toMatchObject({ code: 'job_not_found' });
    const batchId = '00000000-0000-4000-8000-000000000000';
    expect(await failure(client.getBatch(batchId))).toMatchObject({ code: 'batch_not_found' });
  });

  it('throws unauthorized without the API key the server requires', async () => {
    const anonymous = new InferqClient({ url: idleUrl });
    expect(await failure(anonymous.listModels())).toMatchObject({
      status: 401,
      code: 'unauthorized',
    });
    expect((await idleClient.listModels()).models.length).toBeGreaterThan(0);
  });

  it('turns a closed port into code unavailable naming the server', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const err = await failure(new InferqClient({ url }).listModels());
    expect(err).toMatchObject({ status: 0, code: 'unavailable', unreachable: true });
    expect(err.message).toContain(`cannot reach the inferq server at ${url}: `);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('gives up on a server that never answers after timeoutMs with code timeout', async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const { port } = silent.address() as { port: number };
      const started = Date.now();
      const slow = new InferqClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 300 });
      expect(await failure(slow.listModels())).toMatchObject({ status: 0, code: 'timeout' });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      silent.close();
    }
  });
});

describe('InferqClient: batches', () => {
  const items = (n: number, seed: number): BatchItem[] =>
    Array.from({ length: n }, (_, i) => ({ id: `row-${i}`, features: uniqueRow(seed + i) }));

  it('runs a JSON batch and streams its results in order, equal to online predictions', async () => {
    const rows = items(120, 10_000);
    const batch = await client.createBatch('breast-cancer', rows, { version: '1.0.0' });
    expect(batch).toMatchObject({ status: 'queued', total: 120 });
    const done = await client.getBatch(batch.id, { wait: 30 });
    expect(done).toMatchObject({ status: 'completed', completed: 120, failed: 0, pending: 0 });
    const results = await collect(client.batchResults(batch.id));
    expect(results.map((r) => r.index)).toEqual(rows.map((_, i) => i));
    expect(results.map((r) => r.id)).toEqual(rows.map((r) => r.id));
    const online = await client.predict('breast-cancer', rows[77]?.features ?? [], {
      version: '1.0.0',
    });
    const line: any = results[77];
    const want: any = online;
    expect(line).toMatchObject({ status: 'completed', prediction: want.prediction });
    expect(line.probabilities[0]).toBeCloseTo(want.probabilities[0], 5);
  });

  it('streams an async iterable up as NDJSON and reports progress events until done', async () => {
    async function* generate() {
      for (let i = 0; i < 400; i++) {
        // A source that really is asynchronous, like a file or a socket.
        await Promise.resolve();
        yield { features: uniqueRow(20_000 + i) };
      }
    }
    const batch = await client.createBatch('breast-cancer', generate());
    expect(batch.total).toBe(400);
    const events = await collect(client.batchEvents(batch.id));
    expect(events.every((e) => e.event === 'progress' || e.event === 'done')).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: 'done', data: { completed: 400, pending: 0 } });
    const results = await collect(client.batchResults(batch.id));
    expect(results).toHaveLength(400);
    expect(results.every((r, i) => r.index === i && r.status === 'completed')).toBe(true);
  });

  it('uploads raw NDJSON bytes from a Node stream', async () => {
    const lines = [0, 1, 2].map(
      (i) => `${JSON.stringify({ id: `n${i}`, features: uniqueRow(30_000 + i) })}\n`,
    );
    const batch = await client.createBatch('breast-cancer', { ndjson: Readable.from(lines) });
    expect(batch.total).toBe(3);
    const results = await collect(client.batchResults(batch.id));
    expect(results.map((r) => r.id)).toEqual(['n0', 'n1', 'n2']);
    // The same lines as the server wrote them, for copying without parsing.
    const raw = await collect(client.batchResultLines(batch.id));
    expect(raw.map((line) => JSON.parse(line) as unknown)).toEqual(results);
    expect(raw.every((line) => line.startsWith('{"index":'))).toBe(true);
    // And as bytes in blocks of whole lines: the same text.
    const blocks = await collect(client.batchResultBlocks(batch.id));
    expect(blocks.every((b) => b[b.length - 1] === 0x0a)).toBe(true);
    expect(Buffer.concat(blocks).toString()).toBe(raw.map((line) => `${line}\n`).join(''));
  });

  it('rejects a bad line 7 with 422 naming it, without sending the rest of the stream', async () => {
    let produced = 0;
    async function* generate() {
      for (let i = 0; i < 100_000; i++) {
        produced++;
        await Promise.resolve();
        yield { features: i === 6 ? [1, 2] : uniqueRow(40_000 + i) };
      }
    }
    const err = await failure(client.createBatch('breast-cancer', generate()));
    expect(err).toMatchObject({ status: 422, code: 'validation_error' });
    expect(err.details?.[0]).toMatchObject({ line: 7 });
    expect(produced).toBeLessThan(100_000);
  });

  it('reports an error of the item source itself, not a network failure', async () => {
    async function* broken() {
      yield { features: uniqueRow(1) };
      await Promise.resolve();
      throw new Error('source broke');
    }
    await expect(client.createBatch('breast-cancer', broken())).rejects.toThrow('source broke');
  });

  it('stops an event stream when its signal aborts, though the batch has not ended', async () => {
    const batch = await idleClient.createBatch('breast-cancer', items(2, 60_000));
    const controller = new AbortController();
    const seen: string[] = [];
    const following = (async () => {
      for await (const event of idleClient.batchEvents(batch.id, { signal: controller.signal })) {
        seen.push(event.event);
        controller.abort();
      }
    })();
    await expect(following).rejects.toThrow();
    expect(seen).toEqual(['progress']);
    await idleClient.cancelBatch(batch.id);
  });

  it('cancels a batch that has not started; its results say cancelled', async () => {
    const batch = await idleClient.createBatch('breast-cancer', items(5, 50_000));
    await idleClient.cancelBatch(batch.id);
    const view = await idleClient.getBatch(batch.id);
    expect(view).toMatchObject({ status: 'cancelled', pending: 0 });
    const results = await collect(idleClient.batchResults(batch.id));
    expect(results.map((r) => r.status)).toEqual(Array(5).fill('cancelled'));
  });
});

describe('InferqClient: Open Inference Protocol (/v2)', () => {
  it('reads server metadata, health and model metadata with and without a version', async () => {
    expect(await client.v2.serverMetadata()).toMatchObject({ name: 'inferq' });
    expect(await client.v2.live()).toBe(true);
    expect(await client.v2.ready()).toBe(true);
    const meta = await client.v2.modelMetadata('digits-cnn');
    expect(meta).toMatchObject({ name: 'digits-cnn', platform: 'onnxruntime_onnx' });
    expect(meta.inputs[0]).toMatchObject({ name: 'image', shape: [-1, 1, 8, 8] });
    expect((await client.v2.modelMetadata('breast-cancer', '1.0.0')).versions).toContain('1.0.0');
    expect(await client.v2.modelReady('breast-cancer')).toBe(true);
    expect(await client.v2.modelReady('breast-cancer', '1.0.0')).toBe(true);
  });

  it('infers digit images [2,1,8,8] with the fixture’s labels', async () => {
    const fixture = parityFixture('digits-cnn', '1.0.0');
    const images = (fixture.rows as number[][][][]).slice(0, 2);
    const res = await client.v2.infer('digits-cnn', {
      id: 'client-v2',
      inputs: [{ name: 'image', shape: [2, 1, 8, 8], datatype: 'FP32', data: images }],
    });
    expect(res).toMatchObject({
      model_name: 'digits-cnn',
      model_version: '1.0.0',
      id: 'client-v2',
    });
    expect(res.outputs.find((o) => o.name === 'label')?.data).toEqual(fixture.labels?.slice(0, 2));
  });

  it('turns {"error": "..."} answers into InferqError with a status-derived code', async () => {
    const missing = await failure(client.v2.modelMetadata('no-such-model'));
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });
    expect(missing.message.length).toBeGreaterThan(0);
    const badShape = await failure(
      client.v2.infer('breast-cancer', {
        inputs: [{ name: 'input', shape: [1, 29], datatype: 'FP32', data: uniqueRow(1, 29) }],
      }),
    );
    expect(badShape).toMatchObject({ status: 400, code: 'invalid_request' });
  });
});

describe('InferqClient: operations', () => {
  it('reads liveness, readiness and the Prometheus metrics', async () => {
    expect(await client.health.live()).toEqual({ status: 'ok' });
    expect(await client.health.ready()).toMatchObject({ status: 'ready', redis: 'ok' });
    expect(await client.metrics()).toContain('inferq_http_requests_total');
  });
});
