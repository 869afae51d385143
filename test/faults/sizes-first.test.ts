import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeKeys, uniquePrefix } from '../helpers/env.js';
import { keepAliveAgent, send } from '../helpers/http-client.js';
import { WsClient } from '../helpers/live-clients.js';
import { startApiProcess, stopAll, type ApiProcess } from '../helpers/processes.js';

// Issue 10, item 7: a 10 MB body of valid numbers cost about 1.1 s of event loop, because
// every element was checked before the length was compared with the model's width.

// About 10 MB: 4.9 million one-digit numbers, all valid, of the wrong width.
const COUNT = 4_900_000;
const NUMBERS = `[${Array.from({ length: COUNT }, (_, i) => i % 10).join(',')}]`;
// As many invalid values: only a length check before any element can name the width.
const STRINGS = `[${Array.from({ length: 200_000 }, () => '"x"').join(',')}]`;

const KEY = { 'x-api-key': 'keyA', 'content-type': 'application/json' };

describe('the width is checked before the elements (real API process)', () => {
  const prefix = uniquePrefix('sizes');
  let api: ApiProcess;

  beforeAll(async () => {
    api = await startApiProcess({
      QUEUE_PREFIX: prefix,
      API_KEYS: 'keyA,keyB',
      MODEL_RESCAN_MS: '0',
      DEFAULT_WAIT_S: '0',
      MAX_WAIT_S: '0',
    });
  });

  afterAll(async () => {
    await stopAll([api]);
    await removeKeys(prefix);
  });

  const cases: [string, string, (values: string) => string, RegExp][] = [
    [
      'predict features',
      '/v1/models/breast-cancer/predict',
      (v) => `{"features":${v}}`,
      /^features: expected 30 features, got \d+$/,
    ],
    [
      'predict instances',
      '/v1/models/breast-cancer/predict',
      (v) => `{"instances":[${v}]}`,
      /^instances\[0\]: expected 30 features, got \d+$/,
    ],
    [
      'jobs',
      '/v1/jobs',
      (v) => `{"model":"breast-cancer","features":${v}}`,
      /^features: expected 30 features, got \d+$/,
    ],
    [
      'v2 infer',
      '/v2/models/breast-cancer/infer',
      (v) => `{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":${v}}]}`,
      /^input "input": shape \[1, 30\] needs 30 values, got \d+$/,
    ],
  ];

  it.each(cases)(
    '%s: names the width of 200,000 invalid values, not a bad value',
    async (_n, path, wrap, message) => {
      const agent = keepAliveAgent(1);
      const res = await send(agent, api.url, {
        method: 'POST',
        path,
        headers: KEY,
        body: wrap(STRINGS),
      });
      agent.destroy();
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      const { error } = JSON.parse(res.body);
      expect(typeof error === 'string' ? error : error.message).toMatch(message);
    },
  );

  it('v2 infer: counts the instances of the shape before reading the data', async () => {
    const agent = keepAliveAgent(1);
    const res = await send(agent, api.url, {
      method: 'POST',
      path: '/v2/models/breast-cancer/infer',
      headers: KEY,
      body: `{"inputs":[{"name":"input","shape":[6000,30],"datatype":"FP32","data":${STRINGS}}]}`,
    });
    agent.destroy();
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error).toBe('at most 1000 instances per request, got 6000');
  });

  it('WebSocket: names the width of invalid values, and the socket stays open', async () => {
    const client = await WsClient.connect(`ws://127.0.0.1:${api.port}/v1/ws`, {
      'x-api-key': 'keyA',
    });
    try {
      client.send(`{"ref":"wide","model":"breast-cancer","features":${STRINGS}}`);
      expect(await client.next()).toMatchObject({
        ref: 'wide',
        status: 'failed',
        error: { code: 'validation_error', message: 'features: expected 30 features, got 200000' },
      });
      client.send({ ref: 'after', model: 'breast-cancer', features: [1] });
      expect(await client.next()).toMatchObject({ ref: 'after', status: 'failed' });
    } finally {
      await client.close();
    }
  });

  it('answers a 10 MB body of valid numbers of the wrong width with 422 naming the width', async () => {
    const agent = keepAliveAgent(1);
    const started = performance.now();
    const res = await send(agent, api.url, {
      method: 'POST',
      path: '/v1/models/breast-cancer/predict',
      headers: KEY,
      body: `{"features":${NUMBERS}}`,
    });
    const elapsedMs = performance.now() - started;
    agent.destroy();
    expect(res.status).toBe(422);
    expect(JSON.parse(res.body).error.message).toBe(`features: expected 30 features, got ${COUNT}`);
    // What remains is reading and JSON.parse of the body; no element was looked at.
    console.log(`10 MB of ${COUNT} numbers answered in ${elapsedMs.toFixed(0)} ms`);
  }, 60_000);
});
