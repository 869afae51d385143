import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';
import { loose, WsClient } from '../helpers/live-clients.js';
import { buildApi } from '../../src/api/server.js';
import { eventually, removeKeys, testConfig, testLogger } from '../helpers/env.js';
import { createStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let url: string;
let client: WsClient;

beforeAll(async () => {
  stack = await createStack();
  const port = await stack.api.listen(0, '127.0.0.1');
  url = `ws://127.0.0.1:${port}/v1/ws`;
  client = await WsClient.connect(url);
});

afterAll(async () => {
  await client?.close();
  await stack?.close();
});

describe('GET /v1/ws', () => {
  it('answers many requests in flight on one socket, each matched by its ref', async () => {
    const n = 40;
    for (let i = 0; i < n; i++)
      client.send({ ref: `r${i}`, model: 'breast-cancer', features: uniqueRow(50_000 + i) });
    const answers = await client.take(n);
    const byRef = new Map(answers.map((a) => [a.ref, a]));
    expect(byRef.size).toBe(n);
    for (const a of answers) {
      expect(a).toMatchObject({
        status: 'completed',
        model: 'breast-cancer',
        version: '1.1.0',
        cached: false,
      });
      expect(typeof a.id).toBe('string');
      expect(a.probabilities).toHaveLength(2);
    }
    // Each answer is the one for its own row: compare with the HTTP route's answer.
    const http = await (
      await stack.post('/v1/models/breast-cancer/predict', { features: uniqueRow(50_007) })
    )
      .json()
      .then(loose);
    expect(byRef.get('r7').probabilities).toEqual(http.probabilities);
    expect(http.cached).toBe(true);
    // They shared inference runs through the micro-batcher.
    expect(Math.max(...stack.worker!.batchSizes)).toBeGreaterThan(1);
  });

  it('answers malformed JSON with invalid_json and keeps the socket open', async () => {
    client.send('{"ref": "broken", "model": ');
    const answer = await client.next();
    expect(answer).toMatchObject({ status: 'failed', error: { code: 'invalid_json' } });
    expect(answer.ref).toBeUndefined();
    client.send({ ref: 'after', model: 'breast-cancer', features: BREAST_CANCER_ROW });
    expect(await client.next()).toMatchObject({
      ref: 'after',
      status: 'completed',
      label: 'malignant',
    });
  });

  it('answers an unknown model with model_not_found carrying the ref', async () => {
    client.send({ ref: 42, model: 'no-such-model', features: [1, 2, 3] });
    expect(await client.next()).toEqual({
      ref: 42,
      status: 'failed',
      error: { code: 'model_not_found', message: 'Model "no-such-model" does not exist.' },
    });
  });

  it('answers a wrong width and a missing field with validation_error carrying the ref', async () => {
    client.send({ ref: 'short', model: 'breast-cancer', features: [1, 2, 3] });
    expect(await client.next()).toMatchObject({
      ref: 'short',
      status: 'failed',
      error: { code: 'validation_error', message: 'features: expected 30 features, got 3' },
    });
    client.send({ ref: 'empty', model: 'breast-cancer' });
    expect(await client.next()).toMatchObject({
      ref: 'empty',
      status: 'failed',
      error: { code: 'validation_error' },
    });
    client.send({ model: 'breast-cancer', features: BREAST_CANCER_ROW });
    const noRef = await client.next();
    expect(noRef).toMatchObject({ status: 'failed', error: { code: 'validation_error' } });
    expect(noRef.error.message).toMatch(/ref/);
  });

  it('answers instances with predictions in input order and a pinned version', async () => {
    client.send({
      ref: 'many',
      model: 'breast-cancer',
      version: '1.0.0',
      instances: [BREAST_CANCER_ROW, uniqueRow(60_001)],
    });
    const answer = await client.next();
    expect(answer).toMatchObject({ ref: 'many', status: 'completed', version: '1.0.0' });
    expect(answer.predictions).toHaveLength(2);
    expect(answer.predictions[0].label).toBe('malignant');
  });

  it('serves several sockets at once, each answered on its own', async () => {
    const other = await WsClient.connect(url);
    try {
      other.send({ ref: 'x', model: 'diabetes', features: uniqueRow(7, 10) });
      client.send({ ref: 'y', model: 'digits', features: uniqueRow(8, 64) });
      const [a, b] = await Promise.all([other.next(), client.next()]);
      expect(a).toMatchObject({ ref: 'x', model: 'diabetes', prediction: expect.any(Number) });
      expect(b).toMatchObject({ ref: 'y', model: 'digits', probabilities: expect.any(Array) });
    } finally {
      await other.close();
    }
  });

  it('answers a plain GET without an upgrade with a clear error', async () => {
    const res = await stack.request('/v1/ws');
    expect(res.status).toBe(422);
    expect((await res.json().then(loose)).error.message).toMatch(/WebSocket/);
  });

  it('closes open sockets with 1001 when the server shuts down, even with requests in flight', async () => {
    // A stack of its own without a worker, so that the request stays queued.
    const config = testConfig();
    const api = await buildApi(config, testLogger('api'));
    try {
      const port = await api.listen(0, '127.0.0.1');
      const socket = await WsClient.connect(`ws://127.0.0.1:${port}/v1/ws`);
      const closed = new Promise<number>((resolve) => socket.socket.once('close', resolve));
      socket.send({ ref: 'stuck', model: 'breast-cancer', features: BREAST_CANCER_ROW });
      await eventually(() => api.hub.size === 1);
      const started = Date.now();
      await api.close();
      expect(await closed).toBe(1001);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await api.close().catch(() => undefined);
      await removeKeys(config.QUEUE_PREFIX);
    }
  });

  it('with API_KEYS, takes the key on the handshake as a header or ?access_token=', async () => {
    const config = testConfig({ API_KEYS: 'ws-secret' });
    const api = await buildApi(config, testLogger('api'));
    try {
      const port = await api.listen(0, '127.0.0.1');
      const base = `ws://127.0.0.1:${port}/v1/ws`;
      await expect(WsClient.connect(base)).rejects.toThrow(/401/);
      await expect(WsClient.connect(`${base}?access_token=wrong`)).rejects.toThrow(/401/);
      const byQuery = await WsClient.connect(`${base}?access_token=ws-secret`);
      const byHeader = await WsClient.connect(base, { Authorization: 'Bearer ws-secret' });
      byQuery.send('not json');
      expect(await byQuery.next()).toMatchObject({ error: { code: 'invalid_json' } });
      await Promise.all([byQuery.close(), byHeader.close()]);
    } finally {
      await api.close();
      await removeKeys(config.QUEUE_PREFIX);
    }
  });
});
