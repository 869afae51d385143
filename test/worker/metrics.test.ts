import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_JOB, type PredictJobData } from '../../src/shared/jobs.js';
import { startWorker } from '../../src/worker/worker.js';
import { eventually, testLogger } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { parseExposition, valueOf, type Exposition } from '../helpers/prometheus.js';
import { freePort } from '../helpers/redis-server.js';
import { createStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let base: string;
const TOKEN = 'worker-scrape-token';
const MODEL = { model: 'breast-cancer', version: '1.1.0' };

beforeAll(async () => {
  const port = await freePort();
  stack = await createStack({
    env: { WORKER_METRICS_PORT: String(port), METRICS_TOKEN: TOKEN, JOB_ATTEMPTS: '1' },
  });
  expect(stack.worker?.ops.metricsPort()).toBe(port);
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await stack?.close();
});

async function scrapeWorker(): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

describe('the worker metrics endpoint', () => {
  it('serves every worker metric in the Prometheus text format', async () => {
    const { types, samples } = await scrapeWorker();
    const ours = Object.fromEntries([...types].filter(([name]) => name.startsWith('inferq_')));
    expect(ours).toEqual({
      inferq_inference_duration_seconds: 'histogram',
      inferq_batch_size: 'histogram',
      inferq_inference_rows_total: 'counter',
      inferq_jobs_total: 'counter',
      inferq_job_retries_total: 'counter',
      inferq_job_queue_wait_seconds: 'histogram',
      inferq_model_load_failures_total: 'counter',
      inferq_models_loaded: 'gauge',
    });
    expect(types.get('process_resident_memory_bytes')).toBe('gauge');
    const loaded = samples.filter((s) => s.name === 'inferq_models_loaded');
    expect(loaded.map((s) => `${s.labels.model}@${s.labels.version}`)).toContain(
      'breast-cancer@1.1.0',
    );
  });

  it('uses batch-size buckets of powers of two up to 1024', async () => {
    await stack.post('/v1/models/breast-cancer/predict', { features: uniqueRow(92_000) });
    const after = await scrapeWorker();
    const les = after.samples
      .filter((s) => s.name === 'inferq_batch_size_bucket' && s.labels.model === 'breast-cancer')
      .filter((s) => s.labels.version === '1.1.0')
      .map((s) => s.labels.le);
    expect(les).toEqual([
      '1',
      '2',
      '4',
      '8',
      '16',
      '32',
      '64',
      '128',
      '256',
      '512',
      '1024',
      '+Inf',
    ]);
  });

  it('moves inference, batch, row, wait and completed-job metrics after predictions', async () => {
    const before = await scrapeWorker();
    const rows = [uniqueRow(92_001), uniqueRow(92_002), uniqueRow(92_003)];
    const res = await stack.post('/v1/models/breast-cancer/predict', { instances: rows });
    expect(res.status).toBe(200);
    const one = await stack.post('/v1/models/breast-cancer/predict', {
      features: uniqueRow(92_004),
    });
    expect(one.status).toBe(200);
    // The completed event (and so its metric) may follow the API's answer by a moment.
    let after = await scrapeWorker();
    await eventually(async () => {
      after = await scrapeWorker();
      return (
        valueOf(after, 'inferq_jobs_total', { ...MODEL, status: 'completed' }) -
          valueOf(before, 'inferq_jobs_total', { ...MODEL, status: 'completed' }) >=
        2
      );
    });
    const delta = (name: string, labels: Record<string, string> = MODEL) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);
    expect(delta('inferq_inference_rows_total')).toBe(4);
    expect(delta('inferq_batch_size_sum')).toBe(4);
    expect(delta('inferq_inference_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(delta('inferq_job_queue_wait_seconds_count')).toBe(2);
  });

  it('counts a job that fails for good as failed', async () => {
    const before = await scrapeWorker();
    const bad: PredictJobData = {
      ...MODEL,
      rows: 1,
      values: [1, 2, 3],
      format: 'task',
      single: true,
    };
    const job = await stack.api.deps.queue.add(PREDICT_JOB, bad, { attempts: 1 });
    await eventually(async () => (await job.getState()) === 'failed');
    await eventually(async () => {
      const after = await scrapeWorker();
      return (
        valueOf(after, 'inferq_jobs_total', { ...MODEL, status: 'failed' }) -
          valueOf(before, 'inferq_jobs_total', { ...MODEL, status: 'failed' }) ===
        1
      );
    });
  });

  it('refuses a scrape without METRICS_TOKEN and answers 404 off /metrics', async () => {
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const basic = Buffer.from(`prometheus:${TOKEN}`).toString('base64');
    const ok = await fetch(`${base}/metrics`, { headers: { authorization: `Basic ${basic}` } });
    expect(ok.status).toBe(200);
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });

  it('starts a worker anyway when the metrics port is taken', async () => {
    const blocker = createServer();
    const port = await freePort();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    const worker = await startWorker({
      config: { ...stack.config, WORKER_METRICS_PORT: port },
      logger: testLogger('worker'),
    });
    try {
      expect(worker.ops.metricsPort()).toBeUndefined();
      expect(worker.pool.keys().length).toBeGreaterThan(0);
    } finally {
      await worker.close();
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });
});
