import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';
import { REDIS_URL, removeKeys, uniquePrefix } from '../helpers/env.js';
import { sseEvents, WsClient } from '../helpers/live-clients.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';
import { jobIdsOf } from '../helpers/queue-audit.js';
import { createStack, ownerFor, type TestStack } from '../helpers/stack.js';

// Response bodies are untyped JSON.
type Body = any;

const A = { authorization: 'Bearer keyA' };
const B = { 'x-api-key': 'keyB' };
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Two API keys, a real API process and (when asked) a real worker process. */
describe('tenants: every job, part, batch and stream belongs to its key (real processes)', () => {
  const prefix = uniquePrefix('tenants');
  const env = {
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    API_KEYS: 'keyA,keyB',
    ADMIN_READ_ONLY: 'true',
    WORKER_METRICS_PORT: '0',
    MODEL_RESCAN_MS: '0',
  };
  let api: ApiProcess;
  let worker: InferqProcess | undefined;
  let redis: Redis;

  const call = async (path: string, headers: Record<string, string>, init: RequestInit = {}) => {
    const res = await fetch(`${api.url}${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', ...headers, ...(init.headers ?? {}) },
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, res };
  };
  const post = (path: string, headers: Record<string, string>, body: unknown) =>
    call(path, headers, { method: 'POST', body: JSON.stringify(body) });

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    api = await startApiProcess(env);
  });

  afterAll(async () => {
    await stopAll([api, worker]);
    await redis.quit();
    await removeKeys(prefix);
  });

  it('keeps gathered requests of one key apart: independent ids, none readable or cancellable by the other key', async () => {
    // No worker yet: the requests stay queued, gathered into shared queue jobs.
    const sent = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        post(
          '/v1/models/breast-cancer/predict',
          { ...A, prefer: 'respond-async' },
          {
            features: uniqueRow(1000 + i),
          },
        ),
      ),
    );
    expect(sent.map((r) => r.status)).toEqual(sent.map(() => 202));
    const ids = sent.map((r) => String(r.body.id));
    expect(ids.every((id) => UUID_SHAPE.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // Several requests shared a queue job, yet their ids share no prefix that would reveal it.
    const jobs = await jobIdsOf(redis, prefix, ids, ownerFor('keyA'));
    expect(new Set(jobs).size).toBeLessThan(ids.length);
    expect(new Set(ids.map((id) => id.slice(0, 8))).size).toBe(ids.length);

    for (const id of ids.slice(0, 6)) {
      expect((await call(`/v1/jobs/${id}`, A)).body.status).toBe('queued');
      const read = await call(`/v1/jobs/${id}`, B);
      expect(read.status).toBe(404);
      expect(read.body.error.code).toBe('job_not_found');
      expect((await call(`/v1/jobs/${id}`, B, { method: 'DELETE' })).status).toBe(404);
      const feed = await fetch(`${api.url}/v1/jobs/${id}/events`, { headers: B });
      expect(feed.status).toBe(404);
      await feed.body?.cancel();
    }
    // Cancelling a part whose job carries other requests is refused even to its owner.
    const shared = ids.find((_, i) => jobs.filter((j) => j === jobs[i]).length > 1) ?? '';
    const cancel = await call(`/v1/jobs/${shared}`, A, { method: 'DELETE' });
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.code).toBe('job_not_cancellable');
    // The queue job's own id is no public handle at all.
    const whole = await call(`/v1/jobs/${jobs[0]}`, A, { method: 'DELETE' });
    expect(whole.status).toBe(404);
  });

  it("scopes Idempotency-Key to the API key and binds it to the request's body", async () => {
    const job = { model: 'breast-cancer', features: uniqueRow(2001) };
    const first = await post('/v1/jobs', { ...A, 'idempotency-key': 'order-42' }, job);
    expect(first.status).toBe(202);
    const again = await post('/v1/jobs', { ...A, 'idempotency-key': 'order-42' }, job);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);

    // The other key's "order-42" is its own: a new job, and A's stays invisible to it.
    const other = { model: 'diabetes', features: uniqueRow(2002, 10) };
    const b = await post('/v1/jobs', { ...B, 'idempotency-key': 'order-42' }, other);
    expect(b.status).toBe(202);
    expect(b.body.id).not.toBe(first.body.id);
    expect((await call(`/v1/jobs/${first.body.id}`, B)).status).toBe(404);
    expect((await call(`/v1/jobs/${b.body.id}`, B)).body.model).toBe('diabetes');

    // The same key with another body is a client bug: 422, nothing queued.
    const reused = await post(
      '/v1/jobs',
      { ...A, 'idempotency-key': 'order-42' },
      {
        ...job,
        features: uniqueRow(2003),
      },
    );
    expect(reused.status).toBe(422);
    expect(reused.body.error.code).toBe('idempotency_key_reused');
  });

  it("answers 404 for ids shaped like BullMQ's own keys and for made-up ids, never 500", async () => {
    const odd = [
      'events-p0',
      'id-p0',
      'meta',
      'events',
      'wait',
      'x-p1',
      '00000000-0000-0000-0000-000000000000',
    ];
    for (const id of odd) {
      for (const [path, method] of [
        [`/v1/jobs/${id}`, 'GET'],
        [`/v1/jobs/${id}`, 'DELETE'],
        [`/v1/jobs/${id}/events`, 'GET'],
      ] as const) {
        const res = await call(path, A, { method });
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.body.error.code).toBe('job_not_found');
      }
    }
  });

  it('serves results to their owner only, with no trace of the other key in cache hits', async () => {
    worker = await startWorkerProcess(env);
    const input = { features: BREAST_CANCER_ROW.map((v, i) => (i === 3 ? 4242 : v)) };
    const a = await post('/v1/models/breast-cancer/predict', A, input);
    expect(a.status).toBe(200);
    expect(a.body.cached).toBe(false);
    const aAgain = await post('/v1/models/breast-cancer/predict', A, input);
    expect(aAgain.body).toMatchObject({ cached: true, id: a.body.id });

    // Another key sending the same input gets its own computation (CACHE_SCOPE=key by default).
    const b = await post('/v1/models/breast-cancer/predict', B, input);
    expect(b.status).toBe(200);
    expect(b.body.cached).toBe(false);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.body.prediction).toBe(a.body.prediction);
    expect((await call(`/v1/jobs/${a.body.id}`, B)).status).toBe(404);
    expect((await call(`/v1/jobs/${b.body.id}`, A)).status).toBe(404);
    expect((await call(`/v1/jobs/${a.body.id}`, A)).body.status).toBe('completed');
  });

  it('keeps batches, their results, progress feed and cancel to their key', async () => {
    const items = Array.from({ length: 5 }, (_, i) => ({
      id: `r${i}`,
      features: uniqueRow(3000 + i),
    }));
    const created = await post('/v1/batches', A, { model: 'breast-cancer', items });
    expect(created.status).toBe(202);
    const id = String(created.body.id);
    const done = await call(`/v1/batches/${id}?wait=20`, A);
    expect(done.body.status).toBe('completed');
    for (const path of [
      `/v1/batches/${id}`,
      `/v1/batches/${id}/results`,
      `/v1/batches/${id}/events`,
    ]) {
      const res = await fetch(`${api.url}${path}`, { headers: B });
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as Body).error.code).toBe('batch_not_found');
    }
    const del = await call(`/v1/batches/${id}`, B, { method: 'DELETE' });
    expect(del.status).toBe(404);
    const results = await fetch(`${api.url}/v1/batches/${id}/results`, { headers: A });
    expect((await results.text()).trim().split('\n')).toHaveLength(5);
  });

  it('follows a job over SSE and answers WebSocket requests for their owner only', async () => {
    const queued = await post('/v1/jobs', A, { model: 'breast-cancer', features: uniqueRow(4001) });
    const events = [];
    for await (const e of sseEvents(`${api.url}/v1/jobs/${queued.body.id}/events`, { headers: A }))
      events.push(e);
    expect(events.at(-1)?.event).toBe('result');

    const ws = await WsClient.connect(`${api.url.replace('http', 'ws')}/v1/ws`, B);
    try {
      ws.send({ ref: 'b1', model: 'breast-cancer', features: uniqueRow(4002) });
      const answer = await ws.next();
      expect(answer).toMatchObject({ ref: 'b1', status: 'completed' });
      // B's socket result is B's: A cannot read it, B can.
      expect((await call(`/v1/jobs/${answer.id}`, A)).status).toBe(404);
      expect((await call(`/v1/jobs/${answer.id}`, B)).body.status).toBe('completed');
    } finally {
      await ws.close();
    }
  });
});

describe("CACHE_SCOPE=shared: keys reuse each other's results without seeing whose they were", () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack({ env: { API_KEYS: 'keyA,keyB', CACHE_SCOPE: 'shared' } });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('answers B from the cache A filled, with a fresh id that names nothing', async () => {
    const input = { features: BREAST_CANCER_ROW.map((v, i) => (i === 3 ? 5151 : v)) };
    const a = (await (
      await stack.post('/v1/models/breast-cancer/predict', input, A)
    ).json()) as Body;
    expect(a.cached).toBe(false);
    const b = (await (
      await stack.post('/v1/models/breast-cancer/predict', input, B)
    ).json()) as Body;
    expect(b.cached).toBe(true);
    expect(b.prediction).toBe(a.prediction);
    expect(b.id).not.toBe(a.id);
    expect(b.id).toMatch(UUID_SHAPE);
    for (const headers of [A, B]) {
      expect((await stack.request(`/v1/jobs/${b.id}`, { headers })).status).toBe(404);
    }
    // A's own repeat is served from the cache under A's own id.
    const again = (await (
      await stack.post('/v1/models/breast-cancer/predict', input, A)
    ).json()) as Body;
    expect(again).toMatchObject({ cached: true, id: a.id });
  });
});
