import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();

let stack: TestStack;
let seed = 93_000;

beforeAll(async () => {
  // No worker: queued jobs stay queued.
  stack = await createStack({
    worker: false,
    env: { MAX_QUEUE_DEPTH: '5', QUEUE_DEPTH_REFRESH_MS: '100', DEFAULT_WAIT_S: '0' },
  });
});

afterAll(async () => {
  await stack?.close();
});

const submit = () =>
  stack.post('/v1/jobs', { model: 'breast-cancer', features: uniqueRow(seed++) });

describe('backpressure at MAX_QUEUE_DEPTH', () => {
  it('accepts jobs up to the bound, then answers 429 queue_full with Retry-After', async () => {
    for (let i = 0; i < 5; i++) expect((await submit()).status).toBe(202);
    let refused: Response | undefined;
    // The depth is refreshed in the background (QUEUE_DEPTH_REFRESH_MS), not read per request.
    await eventually(async () => {
      const res = await submit();
      if (res.status === 429) refused = res;
      return res.status === 429;
    }, 5000);
    const body = await json(refused!);
    expect(body.error.code).toBe('queue_full');
    expect(body.error.message).toMatch(/limit 5/);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const waiting = await stack.api.deps.queue.getJobCounts('waiting', 'prioritized');
    // At most a few more than the bound got in before the next refresh saw them.
    expect((waiting.waiting ?? 0) + (waiting.prioritized ?? 0)).toBeLessThan(5 + 10);
  });

  it('refuses new online predictions too, without queuing them', async () => {
    const before = await stack.api.deps.queue.count();
    const res = await stack.post('/v1/models/breast-cancer/predict', {
      features: uniqueRow(seed++),
    });
    expect(res.status).toBe(429);
    expect((await json(res)).error.code).toBe('queue_full');
    expect(await stack.api.deps.queue.count()).toBe(before);
  });

  it('accepts work again once a worker has drained the queue', async () => {
    await stack.startWorker();
    await eventually(async () => (await stack.api.deps.queue.count()) === 0, 15_000);
    await eventually(async () => (await submit()).status === 202, 5000);
  });
});
