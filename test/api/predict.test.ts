import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStack, type TestStack } from '../helpers/stack.js';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';

let stack: TestStack;

beforeAll(async () => {
  stack = await createStack();
});

afterAll(async () => {
  await stack?.close();
});

const PREDICT = '/v1/models/breast-cancer/predict';

async function json(res: Response): Promise<any> {
  return res.json();
}

describe('POST /v1/models/{model}/predict', () => {
  it('answers one instance with the classification result of the default version', async () => {
    const res = await stack.post(PREDICT, { features: BREAST_CANCER_ROW });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({
      model: 'breast-cancer',
      version: '1.1.0',
      cached: false,
      prediction: 0,
      label: 'malignant',
    });
    expect(typeof body.id).toBe('string');
    expect(body.probabilities).toHaveLength(2);
    expect(body.confidence).toBeCloseTo(Math.max(...body.probabilities), 10);
    expect(body.probabilities[0] + body.probabilities[1]).toBeCloseTo(1, 5);
  });

  it('answers many instances with predictions in input order', async () => {
    const rows = [BREAST_CANCER_ROW, uniqueRow(1), uniqueRow(2)];
    const res = await stack.post(PREDICT, { instances: rows });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.predictions).toHaveLength(3);
    const single = await json(await stack.post(PREDICT, { features: uniqueRow(2) }));
    expect(body.predictions[2].probabilities[0]).toBeCloseTo(single.probabilities[0], 6);
    expect(body.predictions[0].label).toBe('malignant');
  });

  it('serves the :predict alias of TF Serving and KServe V1', async () => {
    const res = await stack.post('/v1/models/breast-cancer:predict', {
      instances: [BREAST_CANCER_ROW],
    });
    expect(res.status).toBe(200);
    expect((await json(res)).predictions[0].label).toBe('malignant');
  });

  it('answers a repeated input from the cache without queuing a job', async () => {
    const row = uniqueRow(777);
    const first = await json(await stack.post(PREDICT, { features: row }));
    expect(first.cached).toBe(false);
    const before = await stack.api.deps.queue.getJobCounts('completed', 'waiting', 'active');
    const second = await stack.post(PREDICT, { features: row });
    expect(second.status).toBe(200);
    const body = await json(second);
    expect(body.cached).toBe(true);
    expect(body.id).toBe(first.id);
    expect(body.probabilities).toEqual(first.probabilities);
    const after = await stack.api.deps.queue.getJobCounts('completed', 'waiting', 'active');
    expect(after).toEqual(before);
    expect(second.headers.get('server-timing')).toMatch(/cache;dur=/);
  });

  it('shares one job and one inference among identical concurrent requests', async () => {
    const row = uniqueRow(4242);
    const before = stack.worker!.batchSizes.length;
    const rowsBefore = stack.worker!.batchSizes.reduce((a, b) => a + b, 0);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => stack.post(PREDICT, { features: row })),
    );
    const bodies = await Promise.all(answers.map(json));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    const ids = new Set(bodies.map((b) => b.id));
    expect(ids.size).toBe(1);
    const rowsAfter = stack.worker!.batchSizes.reduce((a, b) => a + b, 0);
    expect(rowsAfter - rowsBefore).toBe(1);
    expect(stack.worker!.batchSizes.length - before).toBe(1);
  });

  it('batches concurrent distinct requests into one inference run', async () => {
    const answers = await Promise.all(
      Array.from({ length: 48 }, (_, i) =>
        stack.post(PREDICT, { features: uniqueRow(10_000 + i) }),
      ),
    );
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(Math.max(...stack.worker!.batchSizes)).toBeGreaterThan(1);
  });

  it('routes to the version asked by query, header or path', async () => {
    const byQuery = await json(
      await stack.post(`${PREDICT}?version=1.0.0`, { features: BREAST_CANCER_ROW }),
    );
    expect(byQuery.version).toBe('1.0.0');
    const byHeader = await json(
      await stack.post(PREDICT, { features: BREAST_CANCER_ROW }, { 'X-Model-Version': '1.0.0' }),
    );
    expect(byHeader.version).toBe('1.0.0');
    const byPath = await json(
      await stack.post('/v1/models/breast-cancer/versions/1.0.0/predict', {
        features: BREAST_CANCER_ROW,
      }),
    );
    expect(byPath.version).toBe('1.0.0');
    expect(byQuery.probabilities[0]).not.toBeCloseTo(
      (await json(await stack.post(PREDICT, { features: BREAST_CANCER_ROW }))).probabilities[0],
      8,
    );
  });

  it('serves regression models with a numeric prediction', async () => {
    const res = await stack.post('/v1/models/diabetes/predict', {
      features: uniqueRow(5, 10).map((v) => v / 100),
    });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(typeof body.prediction).toBe('number');
    expect(body.label).toBeUndefined();
  });

  it('returns 202 with a job link under Prefer: respond-async, and the job completes', async () => {
    const res = await stack.post(
      PREDICT,
      { features: uniqueRow(31337) },
      { Prefer: 'respond-async' },
    );
    expect(res.status).toBe(202);
    const body = await json(res);
    expect(['queued', 'active']).toContain(body.status);
    expect(body.links.self).toBe(`/v1/jobs/${body.id}`);
    expect(res.headers.get('location')).toBe(`/v1/jobs/${body.id}`);
    expect(res.headers.get('retry-after')).toBe('1');
    const job = await json(await stack.request(`/v1/jobs/${body.id}?wait=10`));
    expect(job.status).toBe('completed');
    expect(job.result.label).toBeDefined();
  });

  it('echoes X-Request-Id and sends Server-Timing with queue, infer and total', async () => {
    const res = await stack.post(
      PREDICT,
      { features: uniqueRow(99) },
      { 'X-Request-Id': 'req-abc-123' },
    );
    expect(res.headers.get('x-request-id')).toBe('req-abc-123');
    const timing = res.headers.get('server-timing') ?? '';
    expect(timing).toMatch(/queue;dur=/);
    expect(timing).toMatch(/infer;dur=/);
    expect(timing).toMatch(/total;dur=/);
    const generated = await stack.request('/v1/models');
    expect(generated.headers.get('x-request-id')).toMatch(/[0-9a-f-]{36}/);
  });
});

describe('predict errors', () => {
  it('rejects 29 features with 422 naming the expected 30', async () => {
    const res = await stack.post(PREDICT, { features: BREAST_CANCER_ROW.slice(1) });
    expect(res.status).toBe(422);
    const body = await json(res);
    expect(body.error.code).toBe('validation_error');
    expect(body.error.message).toContain('expected 30 features, got 29');
    expect(body.error.details[0].path).toBe('features');
  });

  it('names the instance of the wrong width', async () => {
    const res = await stack.post(PREDICT, { instances: [BREAST_CANCER_ROW, [1, 2, 3]] });
    expect(res.status).toBe(422);
    expect((await json(res)).error.details[0]).toEqual({
      path: 'instances[1]',
      message: 'expected 30 features, got 3',
    });
  });

  it('rejects non-numbers, overflow and out-of-float32 values with their path', async () => {
    const strings = await json(
      await stack.post(PREDICT, { features: [...BREAST_CANCER_ROW.slice(1), 'x'] }),
    );
    expect(strings.error.details[0].path).toBe('features[29]');
    const overflow = await stack.post(
      PREDICT,
      `{"features": [${[...BREAST_CANCER_ROW.slice(1), '1e999'].join(',')}]}`,
    );
    expect(overflow.status).toBe(422);
    expect((await json(overflow)).error.message).toContain('finite');
    const big = await stack.post(PREDICT, { features: [...BREAST_CANCER_ROW.slice(1), 1e39] });
    expect(big.status).toBe(422);
    expect((await json(big)).error.message).toContain('float32');
  });

  it('rejects both or neither of features and instances', async () => {
    for (const body of [
      {},
      { features: BREAST_CANCER_ROW, instances: [BREAST_CANCER_ROW] },
      { instances: [] },
    ]) {
      const res = await stack.post(PREDICT, body);
      expect(res.status).toBe(422);
      expect((await json(res)).error.code).toBe('validation_error');
    }
  });

  it('rejects more than MAX_INSTANCES instances', async () => {
    const rows = Array.from({ length: 1001 }, () => BREAST_CANCER_ROW);
    const res = await stack.post(PREDICT, { instances: rows });
    expect(res.status).toBe(422);
    expect((await json(res)).error.message).toContain('1000');
  });

  it('answers 400 invalid_json for a body that is not JSON', async () => {
    const res = await stack.post(PREDICT, '{"features": [1, 2,');
    expect(res.status).toBe(400);
    expect((await json(res)).error.code).toBe('invalid_json');
    const empty = await stack.post(PREDICT, '');
    expect(empty.status).toBe(400);
  });

  it('answers 415 for a body that is not JSON by media type', async () => {
    const res = await stack.post(PREDICT, 'a,b,c', { 'content-type': 'text/csv' });
    expect(res.status).toBe(415);
    expect((await json(res)).error.code).toBe('unsupported_media_type');
  });

  it('answers 404 for unknown models, versions and routes', async () => {
    const model = await stack.post('/v1/models/nope/predict', { features: [1] });
    expect(model.status).toBe(404);
    expect((await json(model)).error.code).toBe('model_not_found');
    const version = await stack.post(`${PREDICT}?version=9.9.9`, { features: BREAST_CANCER_ROW });
    expect(version.status).toBe(404);
    expect((await json(version)).error.code).toBe('version_not_found');
    const route = await stack.request('/v1/nothing-here');
    expect(route.status).toBe(404);
    expect((await json(route)).error.code).toBe('not_found');
  });

  it('refuses a body over MAX_BODY_BYTES with 413 before reading it all', async () => {
    let pulled = 0;
    const chunk = new Uint8Array(1024 * 1024).fill(32);
    // A 1 GB body that is produced on demand: the server must stop pulling long before the end.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += chunk.length;
        if (pulled > 1024 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await stack.api.app.request(PREDICT, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body,
      duplex: 'half',
    });
    expect(res.status).toBe(413);
    expect((await json(res)).error.code).toBe('payload_too_large');
    expect(pulled).toBeLessThan(64 * 1024 * 1024);
    const declared = await stack.request(PREDICT, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(1024 ** 3) },
      body: '{}',
    });
    expect(declared.status).toBe(413);
  });
});

describe('GET /v1/models', () => {
  it('lists every model with versions newest first and the default', async () => {
    const body = await json(await stack.request('/v1/models'));
    const bc = body.models.find((m: any) => m.name === 'breast-cancer');
    expect(bc).toEqual({
      name: 'breast-cancer',
      versions: ['1.1.0', '1.0.0'],
      default: '1.1.0',
      task: 'classification',
    });
    expect(body.models.map((m: any) => m.name)).toEqual(
      expect.arrayContaining(['digits', 'diabetes']),
    );
  });

  it('describes a version with tensors from the ONNX file, ETag and Cache-Control', async () => {
    const res = await stack.request('/v1/models/breast-cancer/versions/1.0.0');
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({
      name: 'breast-cancer',
      version: '1.0.0',
      default: '1.1.0',
      task: 'classification',
    });
    expect(body.labels).toEqual(['malignant', 'benign']);
    expect(body.features).toHaveLength(30);
    expect(body.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 30] }]);
    expect(body.outputs.map((o: any) => o.name)).toContain('probabilities');
    const etag = res.headers.get('etag');
    expect(etag).toBeTruthy();
    expect(res.headers.get('cache-control')).toContain('max-age');
    const again = await stack.request('/v1/models/breast-cancer/versions/1.0.0', {
      headers: { 'If-None-Match': etag! },
    });
    expect(again.status).toBe(304);
    const def = await json(await stack.request('/v1/models/breast-cancer'));
    expect(def.version).toBe('1.1.0');
  });
});
