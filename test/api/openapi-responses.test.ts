/**
 * The served /openapi.json against the service itself: real responses of every documented
 * operation, success and error (NDJSON lines, SSE events and WebSocket messages included), are
 * validated with a JSON Schema 2020-12 validator (ajv) against the schemas of the document.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { removeKeys, testConfig, testLogger } from '../helpers/env.js';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';
import { WsClient } from '../helpers/live-clients.js';
import { OpenApiChecker, type OpenApiDoc } from '../helpers/openapi-check.js';
import { createStack, type TestStack } from '../helpers/stack.js';

const ADMIN = { authorization: 'Bearer doc-admin' };
const NDJSON_TYPE = { 'content-type': 'application/x-ndjson' };
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

let modelDir: string;
let stack: TestStack; // with a worker and every task of model
let guarded: ApiHandle; // API_KEYS, METRICS_TOKEN and ADMIN_TOKEN set: 401s
let closed: ApiHandle; // shut down: 503s
let spec: OpenApiChecker;

/** Models of every task: classification (two versions), regression, raw, free-shaped, NaN. */
function makeModelDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'inferq-openapi-'));
  cpSync('models/breast-cancer', join(dir, 'breast-cancer'), { recursive: true });
  cpSync('models/diabetes', join(dir, 'diabetes'), { recursive: true });
  cpSync('models/diabetes', join(dir, 'diabetes-raw'), { recursive: true });
  const card = join(dir, 'diabetes-raw/1.0.0/model.json');
  const meta = JSON.parse(readFileSync(card, 'utf8')) as Record<string, unknown>;
  writeFileSync(card, JSON.stringify({ ...meta, task: 'raw' }));
  for (const name of ['add-free', 'nan-model'])
    cpSync(`test/fixtures/models/${name}`, join(dir, name), { recursive: true });
  return dir;
}

beforeAll(async () => {
  modelDir = makeModelDir();
  const env = { MODEL_DIR: modelDir, ADMIN_TOKEN: 'doc-admin', BATCH_CHUNK_ROWS: '4' };
  [stack, guarded, closed] = await Promise.all([
    createStack({ env }),
    buildApi(
      testConfig({ ...env, API_KEYS: 'doc-key', METRICS_TOKEN: 'doc-metrics' }),
      testLogger(),
    ),
    buildApi(testConfig(env), testLogger()),
  ]);
  await closed.close();
  const doc = (await (await stack.request('/openapi.json')).json()) as OpenApiDoc;
  spec = new OpenApiChecker(doc);
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await guarded?.close();
  await Promise.all([guarded, closed].map((a) => a && removeKeys(a.deps.config.QUEUE_PREFIX)));
  rmSync(modelDir, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}) =>
  stack.request(path, { headers });
const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  stack.post(path, body, headers);
const del = (path: string) => stack.request(path, { method: 'DELETE' });

/** The first item of a checked JSON body, typed loosely for the test's own reads. */
async function body(op: string, res: Response): Promise<any> {
  const { items } = await spec.check(op, res);
  return items[0];
}

describe('the served OpenAPI document describes the live service', () => {
  it('health, metrics, docs and admin', async () => {
    await spec.check('GET /health/live', await get('/health/live'));
    await spec.check('GET /health/ready', await get('/health/ready'));
    await spec.check('GET /health/ready', await closed.app.request('/health/ready'));
    await spec.check('GET /metrics', await get('/metrics'));
    await spec.check('GET /metrics', await guarded.app.request('/metrics'));
    await spec.check('GET /openapi.json', await get('/openapi.json'));
    await spec.check('GET /docs', await get('/docs'));
    const asset = await get('/docs/assets/init.js');
    const etag = asset.headers.get('etag') ?? '';
    await spec.check('GET /docs/assets/{name}', asset);
    await spec.check(
      'GET /docs/assets/{name}',
      await get('/docs/assets/init.js', { 'if-none-match': etag }),
    );
    await spec.check('GET /docs/assets/{name}', await get('/docs/assets/nothing.js'));
    await spec.check('GET /admin/queues', await get('/admin/queues', ADMIN));
    await spec.check('GET /admin/queues', await get('/admin/queues'));
    const reload = (headers: Record<string, string>) =>
      stack.request('/admin/models/reload', { method: 'POST', headers });
    await spec.check('POST /admin/models/reload', await reload(ADMIN));
    await spec.check('POST /admin/models/reload', await reload({}));
  });

  it('models', async () => {
    await spec.check('GET /v1/models', await get('/v1/models'));
    await spec.check('GET /v1/models', await guarded.app.request('/v1/models'));
    const model = await get('/v1/models/nan-model');
    const etag = model.headers.get('etag') ?? '';
    const card = await body('GET /v1/models/{model}', model);
    expect(card.card).toBeDefined();
    await spec.check(
      'GET /v1/models/{model}',
      await get('/v1/models/nan-model', { 'if-none-match': etag }),
    );
    await spec.check('GET /v1/models/{model}', await get('/v1/models/Not-A-Name'));
    const op = 'GET /v1/models/{model}/versions/{version}';
    await spec.check(op, await get('/v1/models/breast-cancer/versions/1.0.0'));
    await spec.check(op, await get('/v1/models/breast-cancer/versions/9.9.9'));
    await spec.check(op, await get('/v1/models/breast-cancer/versions/not-semver'));
  });

  it('online predictions of every task, and their errors', async () => {
    const op = 'POST /v1/models/{model}/predict';
    const single = await body(
      op,
      await post('/v1/models/breast-cancer/predict', { features: BREAST_CANCER_ROW }),
    );
    expect(single).toMatchObject({ cached: false, label: expect.any(String) });
    // The same again comes from the cache.
    const again = await body(
      op,
      await post('/v1/models/breast-cancer/predict', { features: BREAST_CANCER_ROW }),
    );
    expect(again.cached).toBe(true);
    const many = await body(
      op,
      await post('/v1/models/breast-cancer/predict', { instances: [uniqueRow(1), uniqueRow(2)] }),
    );
    expect(many.predictions).toHaveLength(2);
    const regression = await body(
      op,
      await post('/v1/models/diabetes/predict', { features: uniqueRow(3, 10) }),
    );
    expect(typeof regression.prediction).toBe('number');
    const raw = await body(
      op,
      await post('/v1/models/diabetes-raw/predict', { features: uniqueRow(4, 10) }),
    );
    expect(raw.outputs).toBeDefined();
    const queued = await body(
      op,
      await post(
        '/v1/models/breast-cancer/predict',
        { features: uniqueRow(5) },
        { prefer: 'respond-async' },
      ),
    );
    expect(queued.links.self).toBe(`/v1/jobs/${queued.id}`);
    await spec.check(op, await post('/v1/models/nan-model/predict', { features: [-1, 0, 0, 0] }));
    await spec.check(op, await post('/v1/models/breast-cancer/predict', { features: [1, 2] }));
    await spec.check(op, await post('/v1/models/breast-cancer/predict', '{not json'));
    await spec.check(
      op,
      await stack.request('/v1/models/breast-cancer/predict', {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'x',
      }),
    );
    await spec.check(op, await post('/v1/models/unknown/predict', { features: [1] }));
    await spec.check(
      op,
      await post('/v1/models/breast-cancer/predict?version=0.0.1', { features: [1] }),
    );
    await spec.check(
      op,
      await guarded.app.request('/v1/models/breast-cancer/predict', { method: 'POST' }),
    );
    await spec.check(
      op,
      await closed.app.request('/v1/models/breast-cancer/predict', { method: 'POST' }),
    );

    const alias = 'POST /v1/models/{model}:predict';
    await spec.check(
      alias,
      await post('/v1/models/breast-cancer:predict', { features: BREAST_CANCER_ROW }),
    );
    await spec.check(alias, await post('/v1/models/unknown:predict', { features: [1] }));
    const pinned = 'POST /v1/models/{model}/versions/{version}/predict';
    await spec.check(
      pinned,
      await post('/v1/models/breast-cancer/versions/1.0.0/predict', {
        features: BREAST_CANCER_ROW,
      }),
    );
    await spec.check(
      pinned,
      await post('/v1/models/breast-cancer/versions/2.0.0/predict', { features: [1] }),
    );
  });

  it('asynchronous jobs: submit, read, long-poll, events, cancel', async () => {
    const submit = 'POST /v1/jobs';
    const job = await body(
      submit,
      await post('/v1/jobs', { model: 'breast-cancer', features: uniqueRow(11) }),
    );
    await spec.check(submit, await post('/v1/jobs', { model: 'breast-cancer', features: [1] }));
    await spec.check(
      submit,
      await post(
        '/v1/jobs',
        { model: 'breast-cancer', features: uniqueRow(12) },
        { 'idempotency-key': '' },
      ),
    );

    const read = 'GET /v1/jobs/{id}';
    const done = await body(read, await get(`/v1/jobs/${job.id}?wait=20`));
    expect(done.status).toBe('completed');
    await spec.check(read, await get(`/v1/jobs/${job.id}`, { prefer: 'wait=1' }));
    await spec.check(read, await get(`/v1/jobs/${job.id}?wait=soon`));
    await spec.check(read, await get(`/v1/jobs/${UNKNOWN_ID}`));
    await spec.check(read, await get('/v1/jobs/not-an-id'));

    const events = 'GET /v1/jobs/{id}/events';
    const { items } = await spec.check(events, await get(`/v1/jobs/${job.id}/events`));
    expect(items.map((e: any) => e.event)).toEqual(['status', 'result']);
    const failing = await body(
      submit,
      await post('/v1/jobs', { model: 'nan-model', features: [-2, 0, 0, 0] }),
    );
    const failed = await spec.check(events, await get(`/v1/jobs/${failing.id}/events`));
    expect(failed.items.map((e: any) => e.event)).toContain('error');
    await body(read, await get(`/v1/jobs/${failing.id}?wait=20`));
    await spec.check(events, await get(`/v1/jobs/${UNKNOWN_ID}/events`));

    const cancel = 'DELETE /v1/jobs/{id}';
    await spec.check(cancel, await del(`/v1/jobs/${job.id}`));
    await spec.check(cancel, await del(`/v1/jobs/${UNKNOWN_ID}`));
    // A job stays queued on a stack without a worker: cancelling it answers 204.
    const idle = await createStack({ worker: false, env: { MODEL_DIR: modelDir } });
    try {
      const waiting = await idle.post('/v1/jobs', {
        model: 'breast-cancer',
        features: uniqueRow(13),
      });
      const { id } = (await waiting.clone().json()) as { id: string };
      await spec.check(submit, waiting);
      await spec.check(cancel, await idle.request(`/v1/jobs/${id}`, { method: 'DELETE' }));
      await spec.check(read, await idle.request(`/v1/jobs/${id}`));
    } finally {
      await idle.close();
    }
  });

  it('batches: JSON and NDJSON uploads, progress, results of every kind, events, cancel', async () => {
    const submit = 'POST /v1/batches';
    const rows = [uniqueRow(21), uniqueRow(22), uniqueRow(23)];
    const items = rows.map((features, i) => ({ id: `r${i}`, features }));
    const first = await body(submit, await post('/v1/batches', { model: 'breast-cancer', items }));
    const view = 'GET /v1/batches/{id}';
    expect(
      (await body(view, await get(`/v1/batches/${first.id}?wait=20`))).finishedAt,
    ).toBeDefined();
    // The same rows again, as NDJSON with the version in X-Model-Version: served from the cache.
    const ndjson = rows.map((features) => JSON.stringify({ features })).join('\n');
    const second = await body(
      submit,
      await stack.request('/v1/batches?model=breast-cancer', {
        method: 'POST',
        headers: { ...NDJSON_TYPE, 'x-model-version': '1.1.0' },
        body: ndjson,
      }),
    );
    await body(view, await get(`/v1/batches/${second.id}`, { prefer: 'wait=20' }));
    await spec.check(view, await get(`/v1/batches/${second.id}?wait=x`));
    await spec.check(view, await get(`/v1/batches/${UNKNOWN_ID}`));
    await spec.check(view, await get('/v1/batches/not-a-uuid'));
    await spec.check(
      submit,
      await post('/v1/batches', { model: 'breast-cancer', items: [{ features: [1] }] }),
    );
    await spec.check(
      submit,
      await stack.request('/v1/batches?model=breast-cancer', {
        method: 'POST',
        headers: NDJSON_TYPE,
        body: '{"features": [1]}\n',
      }),
    );

    const results = 'GET /v1/batches/{id}/results';
    // Batch rows reuse the results of one-row online predictions of the same values.
    for (const features of rows)
      await body(
        'POST /v1/models/{model}/predict',
        await post('/v1/models/breast-cancer/predict', { features }),
      );
    const again = await body(submit, await post('/v1/batches', { model: 'breast-cancer', items }));
    await body(view, await get(`/v1/batches/${again.id}?wait=20`));
    const cached = await spec.check(results, await get(`/v1/batches/${again.id}/results`));
    expect(cached.items).toHaveLength(3);
    expect(cached.items.every((l: any) => l.cached === true && l.status === 'completed')).toBe(
      true,
    );
    // Regression rows, some of which fail (NaN output).
    const mixed = await body(
      submit,
      await post('/v1/batches', {
        model: 'nan-model',
        items: [{ features: [4, 0, 0, 0] }, { id: 'bad', features: [-4, 0, 0, 0] }],
      }),
    );
    await body(view, await get(`/v1/batches/${mixed.id}?wait=20`));
    const outcome = await spec.check(results, await get(`/v1/batches/${mixed.id}/results`));
    expect(outcome.items.map((l: any) => l.status)).toEqual(['completed', 'failed']);
    await spec.check(results, await get(`/v1/batches/${UNKNOWN_ID}/results`));

    const events = 'GET /v1/batches/{id}/events';
    const progress = await spec.check(events, await get(`/v1/batches/${first.id}/events`));
    expect(progress.items.map((e: any) => e.event)).toContain('done');
    await spec.check(events, await get(`/v1/batches/${UNKNOWN_ID}/events`));

    // Cancelled rows: a batch on a queue no worker reads.
    const cancel = 'DELETE /v1/batches/{id}';
    const idle = await createStack({ worker: false, env: { MODEL_DIR: modelDir } });
    try {
      const waiting = await idle.post('/v1/batches', { model: 'breast-cancer', items });
      const { id } = (await waiting.clone().json()) as { id: string };
      await spec.check(submit, waiting);
      await spec.check(cancel, await idle.request(`/v1/batches/${id}`, { method: 'DELETE' }));
      const lines = await spec.check(results, await idle.request(`/v1/batches/${id}/results`));
      expect(lines.items.map((l: any) => l.status)).toEqual([
        'cancelled',
        'cancelled',
        'cancelled',
      ]);
    } finally {
      await idle.close();
    }
    await spec.check(cancel, await del(`/v1/batches/${UNKNOWN_ID}`));
  });

  it('the live feed: WebSocket answers, and a plain GET', async () => {
    const op = 'GET /v1/ws';
    const port = await stack.api.listen(0, '127.0.0.1');
    const client = await WsClient.connect(`ws://127.0.0.1:${port}/v1/ws`);
    spec.record(op, 101);
    try {
      client.send({ ref: 'a', model: 'breast-cancer', features: BREAST_CANCER_ROW });
      client.send({ ref: 2, model: 'breast-cancer', instances: [uniqueRow(31)] });
      client.send({ ref: 'c', model: 'breast-cancer', features: [1] });
      client.send('not json');
      const answers = await client.take(4);
      for (const answer of answers)
        expect(spec.problems(op, 101, 'application/json', answer)).toEqual([]);
      expect(answers.map((a: any) => a.status).sort()).toEqual([
        'completed',
        'completed',
        'failed',
        'failed',
      ]);
    } finally {
      await client.close();
    }
    await spec.check(op, await get('/v1/ws'));
  });

  it('the Open Inference Protocol (/v2)', async () => {
    await spec.check('GET /v2', await get('/v2'));
    await spec.check('GET /v2', await guarded.app.request('/v2'));
    await spec.check('GET /v2/health/live', await get('/v2/health/live'));
    await spec.check('GET /v2/health/ready', await get('/v2/health/ready'));
    await spec.check('GET /v2/health/ready', await closed.app.request('/v2/health/ready'));
    for (const base of ['/v2/models/{model}', '/v2/models/{model}/versions/{version}']) {
      const at = (model: string, version = '1.0.0') =>
        base.replace('{model}', model).replace('{version}', version);
      await spec.check(`GET ${base}`, await get(at('add-free')));
      await spec.check(`GET ${base}`, await get(at('unknown')));
      await spec.check(`GET ${base}/ready`, await get(`${at('breast-cancer')}/ready`));
      await spec.check(`GET ${base}/ready`, await get(`${at('Bad Name')}/ready`));
      await spec.check(
        `GET ${base}/ready`,
        await closed.app.request(`${at('breast-cancer')}/ready`),
      );
      const infer = `POST ${base}/infer`;
      const tensors = {
        id: 'req-1',
        inputs: [
          { name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] },
          { name: 'b', shape: [1, 2], datatype: 'FP32', data: [3, 4] },
        ],
      };
      const out = await body(
        infer,
        await post(`${at('add-free')}/infer`, tensors, { prefer: 'wait=20' }),
      );
      expect(out.id).toBe('req-1');
      const rows = {
        inputs: [{ name: 'input', shape: [1, 30], datatype: 'FP32', data: BREAST_CANCER_ROW }],
      };
      const named = await get(at('breast-cancer'));
      const input = ((await named.json()) as { inputs: { name: string }[] }).inputs[0]?.name ?? '';
      rows.inputs[0]!.name = input;
      await body(infer, await post(`${at('breast-cancer')}/infer`, rows));
      await spec.check(infer, await post(`${at('add-free')}/infer`, { inputs: [] }));
      await spec.check(infer, await post(`${at('unknown')}/infer`, tensors));
      await spec.check(
        infer,
        await guarded.app.request(`${at('add-free')}/infer`, { method: 'POST' }),
      );
    }
  });

  it('rejects bodies the document does not describe', async () => {
    const single = await body(
      'POST /v1/models/{model}/predict',
      await post('/v1/models/breast-cancer/predict', { features: BREAST_CANCER_ROW }),
    );
    const predict = (value: unknown) =>
      spec.problems('POST /v1/models/{model}/predict', 200, 'application/json', value);
    expect(predict(single)).toEqual([]);
    expect(predict({ ...single, extra: 1 })).not.toEqual([]);
    expect(predict({ ...single, prediction: 'one' })).not.toEqual([]);
    const line = (value: unknown) =>
      spec.problems('GET /v1/batches/{id}/results', 200, 'application/x-ndjson', value);
    expect(line({ index: 0, status: 'cancelled' })).toEqual([]);
    expect(line({ index: 0, status: 'skipped' })).not.toEqual([]);
    expect(line({ index: 0, status: 'completed', cached: false, prediction: 1.5 })).not.toEqual([]);
    const ready = (value: unknown) =>
      spec.problems('GET /v2/models/{model}/ready', 503, 'application/json', value);
    expect(ready({ name: 'breast-cancer', ready: false })).toEqual([]);
    expect(ready({ error: 'The server is shutting down.' })).toEqual([]);
    const event = (value: unknown) =>
      spec.problems('GET /v1/jobs/{id}/events', 200, 'text/event-stream', value);
    expect(event({ event: 'error', data: { code: 'x', message: 'y' } })).toEqual([]);
    expect(event({ event: 'result', data: { code: 'x', message: 'y' } })).not.toEqual([]);
  });

  it('exercised every documented operation, with a success and (where documented) an error', () => {
    const missing: string[] = [];
    for (const op of spec.operations()) {
      const documented = spec.statuses(op);
      const seen = [...(spec.seen.get(op) ?? [])];
      if (!seen.some((s) => s < 400)) missing.push(`${op}: no success`);
      if (documented.some((s) => s >= 400) && !seen.some((s) => s >= 400))
        missing.push(`${op}: no error`);
    }
    expect(missing).toEqual([]);
    console.info(`validated ${spec.operations().length} operations against /openapi.json`);
  });
});
