import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { PREDICT_QUEUE } from '../../src/shared/keys.js';
import { replyChannel } from '../../src/shared/replies.js';
import { startWorker, type WorkerHandle } from '../../src/worker/worker.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { REDIS_URL, removeKeys, testConfig, testLogger } from '../helpers/env.js';

// Response bodies are untyped JSON.
type Body = any;

const post = async (
  api: ApiHandle,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> =>
  api.app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

/** Counts the messages published on a channel while it listens. */
async function listen(channel: string): Promise<{ count: () => number; close: () => void }> {
  const sub = new Redis(REDIS_URL);
  let n = 0;
  sub.on('message', (ch: string) => ch === channel && n++);
  await sub.subscribe(channel);
  return { count: () => n, close: () => sub.disconnect() };
}

describe('results go to the replica that waits for them', () => {
  const config = testConfig();
  let one: ApiHandle;
  let two: ApiHandle;
  let worker: WorkerHandle | undefined;

  beforeAll(async () => {
    one = await buildApi(config, testLogger('api-1'));
    two = await buildApi(config, testLogger('api-2'));
  });

  afterAll(async () => {
    await worker?.close();
    await one?.close();
    await two?.close();
    await removeKeys(config.QUEUE_PREFIX);
  });

  it("publishes each result on the waiting replica's channel only, and no replica reads the queue's event stream", async () => {
    worker = await startWorker({ config, logger: testLogger('worker') });
    const heardByOne = await listen(replyChannel(config.QUEUE_PREFIX, one.deps.replicaId));
    const heardByTwo = await listen(replyChannel(config.QUEUE_PREFIX, two.deps.replicaId));
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          post(one, '/v1/models/breast-cancer/predict', { features: uniqueRow(7000 + i) }),
        ),
      );
      expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
      await new Promise((r) => setTimeout(r, 200));
      expect(heardByOne.count()).toBeGreaterThan(0);
      expect(heardByTwo.count()).toBe(0);
    } finally {
      heardByOne.close();
      heardByTwo.close();
    }
    // No connection of either replica blocks on the prediction queue's event stream.
    const observer = new Redis(REDIS_URL);
    try {
      const clients = String(await observer.client('LIST'));
      const events = `${config.QUEUE_PREFIX}:${PREDICT_QUEUE}:events`;
      const readers = clients
        .split('\n')
        .filter((line) => /name=inferq-api/.test(line) && line.includes(events));
      expect(readers).toEqual([]);
    } finally {
      observer.disconnect();
    }
  });

  it('has a replica join the job another replica queued for the same input, and answers both', async () => {
    await worker?.close();
    worker = undefined;
    const input = { features: uniqueRow(7200) };
    const first = await post(one, '/v1/models/breast-cancer/predict', input, {
      prefer: 'respond-async',
    });
    const second = post(two, '/v1/models/breast-cancer/predict', input, {
      prefer: 'wait=20',
    });
    await new Promise((r) => setTimeout(r, 300));
    const queuedBefore = await one.deps.queue.getJobCounts('waiting', 'prioritized');
    worker = await startWorker({ config, logger: testLogger('worker') });
    const [a, b] = (await Promise.all([first.json(), second])) as [Body, Response];
    expect(b.status).toBe(200);
    const body = (await b.json()) as Body;
    // Same owner (anonymous), same queue job: the same public id, one inference.
    expect(body).toMatchObject({ id: a.id, cached: false });
    expect((queuedBefore.waiting ?? 0) + (queuedBefore.prioritized ?? 0)).toBe(1);
  });

  it('lets another replica read a result whose replica is gone (a wait outliving its replica)', async () => {
    await worker?.close();
    worker = undefined;
    // Queued through replica one with no worker running; replica one then goes away.
    const replicaOne = await buildApi(config, testLogger('api-gone'));
    const res = await post(
      replicaOne,
      '/v1/models/breast-cancer/predict',
      { features: uniqueRow(7100) },
      {
        prefer: 'respond-async',
      },
    );
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as Body;
    await replicaOne.close();

    // Replica two long-polls it; the worker replies to the dead replica's channel, so replica
    // two must read the stored result.
    const polled = two.app.request(`/v1/jobs/${id}?wait=20`);
    await new Promise((r) => setTimeout(r, 300));
    worker = await startWorker({ config, logger: testLogger('worker') });
    const started = Date.now();
    const view = (await (await polled).json()) as Body;
    expect(view).toMatchObject({
      id,
      status: 'completed',
      result: { prediction: expect.any(Number) },
    });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
