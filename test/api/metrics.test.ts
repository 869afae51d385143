import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { removeKeys, testConfig, testLogger } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { parseExposition, scrape, valueOf, type Exposition } from '../helpers/prometheus.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();

let stack: TestStack;
const PREDICT = '/v1/models/breast-cancer/predict';
const PREDICT_ROUTE = '/v1/models/:model/predict';

beforeAll(async () => {
  stack = await createStack();
});

afterAll(async () => {
  await stack?.close();
});

const metrics = (): Promise<Exposition> => scrape((p, i) => stack.request(p, i));

describe('GET /metrics on the API', () => {
  it('answers the Prometheus text format with every API metric declared', async () => {
    const res = await stack.request('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types } = parseExposition(await res.text());
    expect(Object.fromEntries([...types].filter(([name]) => name.startsWith('inferq_')))).toEqual({
      inferq_http_requests_total: 'counter',
      inferq_http_request_duration_seconds: 'histogram',
      inferq_queue_jobs: 'gauge',
      inferq_batch_chunks: 'gauge',
      inferq_cache_requests_total: 'counter',
      inferq_coalesced_requests_total: 'counter',
      inferq_job_wait_seconds: 'histogram',
      inferq_rate_limited_requests_total: 'counter',
    });
    expect(types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('reports the queue depth by state, read from Redis at scrape time', async () => {
    const exposition = await metrics();
    const states = exposition.samples
      .filter((s) => s.name === 'inferq_queue_jobs')
      .map((s) => s.labels.state)
      .sort();
    expect(states).toEqual(['active', 'completed', 'delayed', 'failed', 'prioritized', 'waiting']);
  });

  it('counts requests by route pattern and status, misses, hits and job waits after predictions', async () => {
    const before = await metrics();
    const row = uniqueRow(91_001);
    expect((await stack.post(PREDICT, { features: row })).status).toBe(200);
    expect((await stack.post(PREDICT, { features: row })).status).toBe(200);
    expect((await stack.post(PREDICT, { features: [1, 2] })).status).toBe(422);
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string> = {}) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);
    const ok = { method: 'POST', route: PREDICT_ROUTE, status: '200' };
    expect(delta('inferq_http_requests_total', ok)).toBe(2);
    expect(delta('inferq_http_requests_total', { ...ok, status: '422' })).toBe(1);
    expect(delta('inferq_http_request_duration_seconds_count', ok)).toBe(2);
    expect(delta('inferq_cache_requests_total', { result: 'miss' })).toBe(1);
    expect(delta('inferq_cache_requests_total', { result: 'hit' })).toBe(1);
    expect(delta('inferq_job_wait_seconds_count')).toBe(1);
    expect(valueOf(after, 'inferq_queue_jobs', { state: 'completed' })).toBeGreaterThan(0);
  });

  it('reports the same request counts to scrapes that run at once', async () => {
    expect((await stack.post(PREDICT, { features: uniqueRow(91_003) })).status).toBe(200);
    // The counts are handed to prom-client at scrape time: concurrent scrapes must not add up.
    const [a, b, c] = await Promise.all([metrics(), metrics(), metrics()]);
    const ok = { method: 'POST', route: PREDICT_ROUTE, status: '200' };
    const count = valueOf(a, 'inferq_http_request_duration_seconds_count', ok);
    expect(count).toBeGreaterThan(0);
    for (const exposition of [a, b, c]) {
      expect(valueOf(exposition, 'inferq_http_requests_total', ok)).toBe(count);
      expect(valueOf(exposition, 'inferq_http_request_duration_seconds_count', ok)).toBe(count);
    }
    const hits = valueOf(a, 'inferq_cache_requests_total', { result: 'hit' });
    expect(valueOf(b, 'inferq_cache_requests_total', { result: 'hit' })).toBe(hits);
    expect(valueOf(c, 'inferq_cache_requests_total', { result: 'hit' })).toBe(hits);
  });

  it('labels requests with the route pattern, never the raw path', async () => {
    await stack.request('/v1/jobs/a-job-that-does-not-exist');
    await stack.request('/no/such/route/at-all');
    const exposition = await metrics();
    const routes = new Set(
      exposition.samples
        .filter((s) => s.name === 'inferq_http_requests_total')
        .map((s) => s.labels.route),
    );
    expect(routes).toContain('/v1/jobs/:id');
    expect(routes).toContain('unmatched');
    expect([...routes].some((r) => r?.includes('a-job-that-does-not-exist'))).toBe(false);
    expect([...routes].some((r) => r?.includes('/no/such'))).toBe(false);
  });

  it('counts identical concurrent predictions that shared one job as coalesced', async () => {
    const before = valueOf(await metrics(), 'inferq_coalesced_requests_total');
    const row = uniqueRow(91_002);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => stack.post(PREDICT, { features: row })),
    );
    expect(answers.every((r) => r.status === 200)).toBe(true);
    const ids = new Set(await Promise.all(answers.map(async (r) => (await json(r)).id)));
    const after = valueOf(await metrics(), 'inferq_coalesced_requests_total');
    // Every request that did not queue its own job either joined one or hit the cache.
    expect(ids.size).toBe(1);
    expect(after - before).toBeGreaterThan(0);
  });
});

describe('METRICS_TOKEN', () => {
  let api: ApiHandle;
  beforeAll(async () => {
    api = await buildApi(
      testConfig({ METRICS_TOKEN: 'scrape-secret', API_KEYS: 'k' }),
      testLogger(),
    );
  });
  afterAll(async () => {
    await api?.close();
    await removeKeys(api.deps.config.QUEUE_PREFIX);
  });

  it('refuses a scrape without the token and accepts it as Bearer, whatever API_KEYS says', async () => {
    const refused = await api.app.request('/metrics');
    expect(refused.status).toBe(401);
    expect((await json(refused)).error.code).toBe('unauthorized');
    const withKey = await api.app.request('/metrics', { headers: { 'x-api-key': 'k' } });
    expect(withKey.status).toBe(401);
    const ok = await api.app.request('/metrics', {
      headers: { authorization: 'Bearer scrape-secret' },
    });
    expect(ok.status).toBe(200);
    expect(parseExposition(await ok.text()).types.get('inferq_queue_jobs')).toBe('gauge');
  });
});
