import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

interface Ready {
  status: string;
  redis?: string;
  models?: number;
  workers?: number;
  queueDepth?: number;
  reason?: string;
}

/** A Redis URL where nothing listens (port 1 is never a Redis). */
const DEAD_REDIS = 'redis://127.0.0.1:1';

/**
 * Runs a request, giving up after `deadlineMs` so that a hang fails the test at once instead of
 * at the test timeout. `res` is undefined when the deadline passed first.
 */
async function timed(
  run: () => Promise<Response>,
  deadlineMs = 2000,
): Promise<{ res?: Response; ms: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const res = await Promise.race([
    run(),
    new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), deadlineMs))),
  ]);
  clearTimeout(timer);
  return { res, ms: performance.now() - started };
}

/** Awaits `promise` at most `ms`; resolves whether it finished in time. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return done;
}

describe('health with Redis and a worker', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack();
  });

  afterAll(async () => {
    await stack.close();
  });

  it('answers /health/live with 200 {"status":"ok"}', async () => {
    const res = await stack.request('/health/live');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers /health/ready with 200, redis ok, 4 models, at least one worker and the queue depth', async () => {
    const res = await stack.request('/health/ready');
    expect(res.status).toBe(200);
    const body = (await res.json()) as Ready;
    expect(body).toMatchObject({ status: 'ready', redis: 'ok', models: 4 });
    expect(body.workers).toBeGreaterThanOrEqual(1);
    expect(typeof body.queueDepth).toBe('number');
    expect(body.queueDepth).toBeGreaterThanOrEqual(0);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});

describe('health with no worker', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack({ worker: false });
  });

  afterAll(async () => {
    await stack.close();
  });

  it('reports 0 workers and counts waiting jobs in queueDepth', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        features: BREAST_CANCER_ROW.map((v) => v + i),
      });
      expect(res.status).toBe(202);
    }
    const res = await stack.request('/health/ready');
    const body = (await res.json()) as Ready;
    expect(body).toMatchObject({ status: 'ready', workers: 0, queueDepth: 3 });
  });

  it('answers ready with 503 "shutting down" and refuses new work with 503 once closing', async () => {
    await stack.api.close();
    const ready = await stack.request('/health/ready');
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as Ready).reason).toContain('shutting down');
    expect(ready.headers.get('retry-after')).toBeTruthy();
    const { res, ms } = await timed(() =>
      stack.post('/v1/jobs', { model: 'breast-cancer', features: BREAST_CANCER_ROW }),
    );
    expect(res?.status).toBe(503);
    expect(res?.headers.get('retry-after')).toBeTruthy();
    expect(((await res?.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    expect(ms).toBeLessThan(1000);
    const live = await stack.request('/health/live');
    expect(live.status).toBe(200);
  });
});

describe('health with Redis unreachable', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack({ worker: false, env: { REDIS_URL: DEAD_REDIS } });
  });

  afterAll(async () => {
    // Bounded: see the shutdown test below.
    await settlesWithin(stack.close(), 3000);
  });

  it('still answers /health/live with 200', async () => {
    const res = await stack.request('/health/live');
    expect(res.status).toBe(200);
  });

  it('answers /health/ready with 503 unavailable and a reason naming Redis, quickly', async () => {
    const { res, ms } = await timed(() => stack.request('/health/ready'));
    expect(res?.status).toBe(503);
    const body = (await res?.json()) as Ready;
    expect(body.status).toBe('unavailable');
    expect(body.reason).toMatch(/redis/i);
    expect(Object.keys(body).sort()).toEqual(['reason', 'status']);
    expect(ms).toBeLessThan(1000);
  });

  it('answers POST predict with 503 unavailable and Retry-After in under 1 s', async () => {
    const { res, ms } = await timed(() =>
      stack.post('/v1/models/breast-cancer/predict', { features: BREAST_CANCER_ROW }),
    );
    expect(res?.status).toBe(503);
    expect(((await res?.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    expect(Number(res?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1000);
  });

  it('answers POST /v1/jobs with 503 unavailable and Retry-After in under 1 s', async () => {
    const { res, ms } = await timed(() =>
      stack.post('/v1/jobs', { model: 'breast-cancer', features: BREAST_CANCER_ROW }),
    );
    expect(res?.status, 'POST /v1/jobs answered before the deadline').toBe(503);
    expect(((await res?.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    expect(Number(res?.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1000);
  });

  it('answers GET /v1/jobs/{id} with 503 unavailable in under 1 s', async () => {
    const { res, ms } = await timed(() =>
      stack.request('/v1/jobs/00000000-0000-4000-8000-000000000000'),
    );
    expect(res?.status, 'GET /v1/jobs/{id} answered before the deadline').toBe(503);
    expect(((await res?.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    expect(ms).toBeLessThan(1000);
  });

  it('still serves model metadata, which needs no Redis', async () => {
    const res = await stack.request('/v1/models/breast-cancer');
    expect(res.status).toBe(200);
  });

  it('shuts down within 2 s while Redis is unreachable', async () => {
    expect(await settlesWithin(stack.api.close(), 2000), 'api.close() finished').toBe(true);
  });
});

describe('health with an empty model repository', () => {
  let stack: TestStack;
  const dir = mkdtempSync(join(tmpdir(), 'inferq-empty-'));

  beforeAll(async () => {
    stack = await createStack({ worker: false, env: { MODEL_DIR: dir } });
  });

  afterAll(async () => {
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /health/ready with 503 and a reason mentioning models', async () => {
    const res = await stack.request('/health/ready');
    expect(res.status).toBe(503);
    const body = (await res.json()) as Ready;
    expect(body.status).toBe('unavailable');
    expect(body.reason).toMatch(/models/);
  });
});
