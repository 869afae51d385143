import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReady } from '../../src/shared/redis.js';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';
import { oddIds } from './odd-ids.js';

// Issue 10, item 9: GET/DELETE/events on ids shaped like BullMQ's own keys (`events-p0`,
// `id-p0`, ...) answered 500 with a Redis WRONGTYPE.

const A = { 'x-api-key': 'keyA' };
const B = { 'x-api-key': 'keyB' };

/** Every route that takes an id, with the method it is called with. */
function routesFor(id: string): [string, string][] {
  return [
    ['GET', `/v1/jobs/${id}`],
    ['GET', `/v1/jobs/${id}?wait=1`],
    ['DELETE', `/v1/jobs/${id}`],
    ['GET', `/v1/jobs/${id}/events`],
    ['GET', `/v1/batches/${id}`],
    ['GET', `/v1/batches/${id}?wait=1`],
    ['DELETE', `/v1/batches/${id}`],
    ['GET', `/v1/batches/${id}/events`],
    ['GET', `/v1/batches/${id}/results`],
  ];
}

describe('odd ids on job and batch routes (real Redis, keyA and keyB)', () => {
  let stack: TestStack;
  const real: { job?: string; online?: string; batch?: string } = {};

  beforeAll(async () => {
    stack = await createStack({
      worker: false,
      env: { API_KEYS: 'keyA,keyB', DEFAULT_WAIT_S: '0', MAX_WAIT_S: '1' },
    });
    await waitForReady(stack.api.deps.redis);
    // Real jobs and a batch of keyA, so that BullMQ's keys (meta, events, id, ...) exist.
    const job = await stack.post(
      '/v1/jobs',
      { model: 'breast-cancer', features: BREAST_CANCER_ROW },
      A,
    );
    real.job = ((await job.json()) as { id: string }).id;
    const online = await stack.post(
      '/v1/models/breast-cancer/predict',
      { features: uniqueRow(1) },
      A,
    );
    real.online = ((await online.json()) as { id: string }).id;
    const batch = await stack.post(
      '/v1/batches',
      { model: 'breast-cancer', items: [{ features: BREAST_CANCER_ROW }] },
      A,
    );
    real.batch = ((await batch.json()) as { id: string }).id;
  });

  afterAll(async () => {
    await stack?.close();
  });

  /** Status of one request; a streaming answer is cancelled once its status is known. */
  async function statusOf(method: string, path: string, headers: Record<string, string>) {
    const res = await stack.request(path, { method, headers });
    await res.body?.cancel().catch(() => undefined);
    return res.status;
  }

  it('answers every odd id with 404 or 422, never a 5xx nor a 2xx', async () => {
    const problems: string[] = [];
    const requests = oddIds().flatMap((id) => routesFor(id));
    const run = async () => {
      for (let r = requests.shift(); r; r = requests.shift()) {
        const [method, path] = r;
        const status = await statusOf(method, path, A);
        if (status !== 404 && status !== 422)
          problems.push(`${method} ${path.slice(0, 90)} -> ${status}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, run));
    expect(problems).toEqual([]);
  }, 60_000);

  it("answers another key's ids, and ids derived from them, with 404", async () => {
    expect(real.job && real.online && real.batch).toBeTruthy();
    const derived = [real.job, real.online, real.batch].flatMap((id) => [
      `${id}`,
      `${id}-p0`,
      `${id}-p1`,
      `${id}x`,
      `${id}`.toUpperCase(),
    ]);
    const problems: string[] = [];
    for (const id of derived) {
      for (const [method, path] of routesFor(id)) {
        const status = await statusOf(method, path, B);
        if (status !== 404) problems.push(`${method} ${path} as keyB -> ${status}`);
      }
    }
    expect(problems).toEqual([]);
  }, 60_000);
});
