import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

/**
 * The request frame and the predict routes over real HTTP (@hono/node-server), where headers
 * and the body are read from Node's request and the predict answer is built in one plain
 * header object: what an in-process `app.request` does not exercise.
 */
describe('request frame over HTTP', () => {
  let stack: TestStack;
  let url: string;

  beforeAll(async () => {
    stack = await createStack();
    url = `http://127.0.0.1:${await stack.api.listen(0, '127.0.0.1')}`;
  });
  afterAll(() => stack.close());

  const predict = (body: unknown, headers: Record<string, string> = {}, query = '') =>
    fetch(`${url}/v1/models/breast-cancer/predict${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('answers a miss, then the same input from the cache, with id, timing and length', async () => {
    const features = uniqueRow(424_242);
    const miss = await predict({ features }, { 'X-Request-Id': 'frame-miss-1' });
    expect(miss.status).toBe(200);
    expect(miss.headers.get('x-request-id')).toBe('frame-miss-1');
    expect(miss.headers.get('server-timing')).toMatch(
      /queue;dur=[\d.]+,infer;dur=[\d.]+,total;dur=[\d.]+;desc="total"$/,
    );
    const missText = await miss.text();
    expect(Number(miss.headers.get('content-length'))).toBe(Buffer.byteLength(missText));
    const first = JSON.parse(missText) as { cached: boolean; label: string; id: string };
    expect(first.cached).toBe(false);

    const hit = await predict({ features }, { 'X-Request-Id': 'frame-hit-1' });
    expect(hit.status).toBe(200);
    expect(hit.headers.get('content-type')).toBe('application/json');
    expect(hit.headers.get('x-request-id')).toBe('frame-hit-1');
    expect(hit.headers.get('server-timing')).toMatch(
      /^cache;dur=[\d.]+,total;dur=[\d.]+;desc="total"$/,
    );
    const second = (await hit.json()) as { cached: boolean; label: string; id: string };
    expect(second).toMatchObject({ cached: true, label: first.label, id: first.id });
  });

  it('replaces an unsafe or overlong X-Request-Id with a UUID', async () => {
    for (const asked of ['has space', 'x'.repeat(201), 'semi;colon']) {
      const res = await predict({ features: BREAST_CANCER_ROW }, { 'X-Request-Id': asked });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );
    }
  });

  it('gives other routes the same id and timing headers', async () => {
    const res = await fetch(`${url}/v1/models`, { headers: { 'X-Request-Id': 'list-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('list-1');
    expect(res.headers.get('server-timing')).toMatch(/total;dur=[\d.]+;desc="total"/);
    const missing = await fetch(`${url}/v1/nothing-here`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('names a malformed version in the query or header with 422, an unknown one with 404', async () => {
    const badHeader = await predict(
      { features: BREAST_CANCER_ROW },
      { 'X-Model-Version': 'not a version' },
      '?version=1.0.0',
    );
    expect(badHeader.status).toBe(422);
    const body = (await badHeader.json()) as {
      error: { code: string; details: { path: string }[] };
    };
    expect(body.error.code).toBe('validation_error');
    expect(body.error.details.map((d) => d.path)).toContain('x-model-version');
    const emptyQuery = await predict({ features: BREAST_CANCER_ROW }, {}, '?version=');
    expect(emptyQuery.status).toBe(422);
    const unknown = await predict({ features: BREAST_CANCER_ROW }, {}, '?version=9.9.9');
    expect(unknown.status).toBe(404);
    const byHeader = await predict({ features: BREAST_CANCER_ROW }, { 'X-Model-Version': '1.0.0' });
    expect(((await byHeader.json()) as { version: string }).version).toBe('1.0.0');
  });

  it('refuses a body that is not JSON by its type or its text, naming why', async () => {
    const typed = await fetch(`${url}/v1/models/breast-cancer/predict`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: '1,2,3',
    });
    expect(typed.status).toBe(415);
    const broken = await fetch(`${url}/v1/models/breast-cancer/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"features": [1, 2',
    });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
  });

  it('counts each answer under its route pattern and status in /metrics', async () => {
    await predict({ features: BREAST_CANCER_ROW });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const line = metrics
      .split('\n')
      .find(
        (l) =>
          l.startsWith('inferq_http_requests_total{') &&
          l.includes('route="/v1/models/:model/predict"') &&
          l.includes('status="200"'),
      );
    expect(line).toBeDefined();
    expect(Number(line!.split(' ').pop())).toBeGreaterThanOrEqual(3);
    expect(metrics).toMatch(/inferq_cache_requests_total\{result="hit"\} [1-9]/);
  });
});
