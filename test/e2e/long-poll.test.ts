import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, uniquePrefix } from '../helpers/env.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';

/** A breast-cancer row unique to this file: feature 23 (an integer in float32) carries `n`. */
const row = (n: number) =>
  Array.from({ length: 30 }, (_, i) => (i === 23 ? 7_700_000 + n : 1 + i / 10));

/**
 * GET /v1/jobs/{id}?wait on a real API process: the handler returns at once and the view is
 * written when the job ends (src/api/http/deferred-json.ts), with the middlewares' headers.
 */
describe('job long-polls through a real API process', () => {
  let api: ApiProcess;
  let worker: InferqProcess | undefined;
  const env = {
    REDIS_URL,
    QUEUE_PREFIX: uniquePrefix('longpoll'),
    MODEL_DIR: 'models',
    WORKER_METRICS_PORT: '0',
  };

  beforeAll(async () => {
    api = await startApiProcess(env);
  }, 60_000);

  afterAll(async () => {
    await stopAll([api, worker]);
  });

  async function submit(n: number): Promise<string> {
    const res = await fetch(`${api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'breast-cancer', features: row(n) }),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }

  it('answers the queued view with the usual headers when the wait runs out', async () => {
    const id = await submit(1);
    const started = Date.now();
    const res = await fetch(`${api.url}/v1/jobs/${id}?wait=1`);
    const text = await res.text();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.headers.get('x-hono-already-sent')).toBeNull();
    expect(JSON.parse(text)).toMatchObject({ id, status: 'queued' });
  });

  it('answers each waiter with its completed view once a worker runs the jobs', async () => {
    const ids = await Promise.all([2, 3, 4].map(submit));
    const waits = ids.map(async (id) => {
      const res = await fetch(`${api.url}/v1/jobs/${id}`, { headers: { prefer: 'wait=30' } });
      return { res, body: (await res.json()) as Record<string, unknown> };
    });
    // A client that gives up mid-wait leaves nothing behind that breaks the others.
    const quitter = request(`${api.url}/v1/jobs/${ids[0]}?wait=30`);
    quitter.on('error', () => undefined);
    quitter.end();
    await new Promise((r) => setTimeout(r, 200));
    quitter.destroy();
    worker = await startWorkerProcess(env);
    for (const [i, { res, body }] of (await Promise.all(waits)).entries()) {
      expect(res.status).toBe(200);
      expect(body).toMatchObject({ id: ids[i], status: 'completed' });
      expect((body.result as { probabilities?: number[] } | undefined)?.probabilities).toHaveLength(
        2,
      );
    }
  }, 60_000);
});
