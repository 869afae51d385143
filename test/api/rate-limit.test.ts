import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReady } from '../../src/shared/redis.js';
import { removeKeys, uniquePrefix } from '../helpers/env.js';
import { startApiProcess, stopAll, type ApiProcess } from '../helpers/processes.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();

const prefix = uniquePrefix('rl');
const env = {
  QUEUE_PREFIX: prefix,
  API_KEYS: 'rl-key-a,rl-key-b',
  RATE_LIMIT_RPS: '5',
  RATE_LIMIT_BURST: '5',
  MODEL_RESCAN_MS: '0',
  WORKER_METRICS_PORT: '0',
};
let apis: ApiProcess[] = [];

beforeAll(async () => {
  apis = await Promise.all([startApiProcess(env), startApiProcess(env)]);
});

afterAll(async () => {
  await stopAll(apis);
  await removeKeys(prefix);
});

async function burst(key: string, n: number): Promise<Response[]> {
  const answers: Response[] = [];
  // Alternate between the two replicas: the limit is held in Redis, not in either process.
  for (let i = 0; i < n; i++) {
    const api = apis[i % 2]!;
    answers.push(await fetch(`${api.url}/v1/models`, { headers: { 'x-api-key': key } }));
  }
  return answers;
}

describe('rate limits shared by two API processes', () => {
  it('allows about RATE_LIMIT_BURST requests of one key across both, then 429 rate_limited', async () => {
    const started = Date.now();
    const answers = await burst('rl-key-a', 16);
    const elapsedS = (Date.now() - started) / 1000;
    const ok = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    // The burst, plus what the sustained rate refilled while the requests were sent.
    expect(ok.length).toBeGreaterThanOrEqual(5);
    expect(ok.length).toBeLessThanOrEqual(5 + Math.ceil(elapsedS * 5));
    expect(ok.length + limited.length).toBe(16);
    // Both replicas refused some: neither kept a private count.
    const refusedBy = new Set(answers.map((r, i) => (r.status === 429 ? i % 2 : -1)));
    expect(refusedBy.has(0) && refusedBy.has(1)).toBe(true);
    const body = await json(limited[0]!);
    expect(body.error.code).toBe('rate_limited');
    const retryAfter = Number(limited[0]!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
  });

  it('keeps a separate budget for another key', async () => {
    const answers = await burst('rl-key-b', 3);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('lets requests through again once the rate has refilled', async () => {
    await burst('rl-key-a', 8);
    await new Promise((r) => setTimeout(r, 1300));
    const [res] = await burst('rl-key-a', 1);
    expect(res!.status).toBe(200);
  });

  it('never limits the health probes', async () => {
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${apis[i % 2]!.url}/health/live`);
      expect(res.status).toBe(200);
    }
  });
});

describe('rate limits without API keys', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await createStack({
      worker: false,
      env: { RATE_LIMIT_RPS: '1', RATE_LIMIT_BURST: '2' },
    });
    await waitForReady(stack.api.deps.redis);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('limits per client address when no API keys are configured', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await stack.request('/v1/models')).status);
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    expect(statuses.slice(2)).toEqual([429, 429]);
  });
});
