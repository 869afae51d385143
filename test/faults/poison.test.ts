import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniquePrefix } from '../helpers/env.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

interface Body {
  id?: string;
  prediction?: number | number[];
  status?: string;
  attempts?: number;
  error?: { code: string; message: string };
}

describe('poison jobs (real API and worker processes, own redis-server)', () => {
  let redis: RedisServer;
  let api: ApiProcess;
  let worker: InferqProcess;

  const post = async (path: string, body: unknown): Promise<{ status: number; body: Body }> => {
    const res = await fetch(`${api.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Body };
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: uniquePrefix('poison'),
      MODEL_DIR: 'test/fixtures/models',
      JOB_ATTEMPTS: '3',
      JOB_BACKOFF_MS: '50',
    };
    // One at a time, so that afterAll can stop the first if the second fails to start.
    api = await startApiProcess(env);
    worker = await startWorkerProcess(env);
  }, 60_000);

  afterAll(async () => {
    await stopAll([api, worker]);
    await redis?.dispose();
  });

  it('fails a NaN-producing input with model_output_invalid at once, then serves the next', async () => {
    const bad = await post('/v1/models/nan-model/predict', { features: [-1, 0, 0, 0] });
    expect(bad.status).toBe(500);
    expect(bad.body.error?.code).toBe('model_output_invalid');
    expect(bad.body.error?.message).toMatch(/invalid output.*NaN/i);

    const good = await post('/v1/models/nan-model/predict', { features: [4, 0, 0, 0] });
    expect(good.status).toBe(200);
    expect(good.body.prediction).toBeCloseTo(2, 5);
  });

  it('does not retry a NaN output: the same input would give NaN again', async () => {
    const queued = await post('/v1/jobs', { model: 'nan-model', features: [-2, 0, 0, 0] });
    const view = (await (
      await fetch(`${api.url}/v1/jobs/${queued.body.id}?wait=10`)
    ).json()) as Body;
    expect(view).toMatchObject({ status: 'failed', attempts: 1 });
    expect(view.error?.code).toBe('model_output_invalid');
  });

  it('retries an input that makes the session throw, fails it with inference_failed after JOB_ATTEMPTS', async () => {
    const queued = await post('/v1/jobs', { model: 'lookup-model', features: [1, 9] });
    expect(queued.status).toBe(202);
    // Good requests for the same model while the poison job is retried.
    const goods = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post('/v1/models/lookup-model/predict', { features: [i, i % 5] }),
      ),
    );
    goods.forEach((g, i) => {
      expect(g.status).toBe(200);
      expect(g.body.prediction).toBeCloseTo(i + (i % 5) * 10, 5);
    });
    const res = await fetch(`${api.url}/v1/jobs/${queued.body.id}?wait=20`);
    const view = (await res.json()) as Body;
    expect(view.status).toBe('failed');
    expect(view.attempts).toBe(3);
    expect(view.error?.code).toBe('inference_failed');
    expect(view.error?.message).toMatch(/Inference failed: .*out of data bounds/);
  });

  it('answers an online request for the throwing input with 500 inference_failed, not a hang', async () => {
    const started = Date.now();
    const bad = await post('/v1/models/lookup-model/predict', { features: [2, -7] });
    expect(bad.status).toBe(500);
    expect(bad.body.error?.code).toBe('inference_failed');
    expect(Date.now() - started).toBeLessThan(10_000);
    const good = await post('/v1/models/lookup-model/predict', { features: [2, 4] });
    expect(good).toMatchObject({ status: 200 });
    expect(good.body.prediction).toBeCloseTo(42, 5);
  });

  it('fails only the poison request among concurrent online requests that may share a job', async () => {
    const bodies = Array.from({ length: 16 }, (_, i) => ({
      features: i === 5 ? [1, 9] : i === 11 ? [1, -9] : [i, i % 5],
    }));
    const answers = await Promise.all(
      bodies.map((b) => post('/v1/models/lookup-model/predict', b)),
    );
    answers.forEach((a, i) => {
      if (i === 5 || i === 11) {
        expect(a.status, `request ${i}`).toBe(500);
        expect(a.body.error?.code).toBe('inference_failed');
      } else {
        expect(a.status, `request ${i}: ${JSON.stringify(a.body)}`).toBe(200);
        expect(a.body.prediction).toBeCloseTo(i + (i % 5) * 10, 5);
      }
    });
    const nans = await Promise.all(
      [-1, 9, -4, 16].map((x) => post('/v1/models/nan-model/predict', { features: [x, 0, 0, 0] })),
    );
    expect(nans.map((a) => a.status)).toEqual([500, 200, 500, 200]);
    expect(nans[0]?.body.error?.code).toBe('model_output_invalid');
    expect(nans[3]?.body.prediction).toBeCloseTo(4, 5);
  });

  it('keeps the worker process alive through every poison job', () => {
    expect(worker.child.exitCode).toBeNull();
    expect(api.child.exitCode).toBeNull();
  });
});
