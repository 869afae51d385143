import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { digestOf, secretMatches } from '../../src/shared/secrets.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();

let stack: TestStack;
let port: number;

beforeAll(async () => {
  stack = await createStack({ env: { API_KEYS: 'key-one, key-two', ADMIN_TOKEN: 'admin-tok' } });
  port = await stack.api.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await stack?.close();
});

const get = (path: string, headers: Record<string, string> = {}) =>
  stack.request(path, { headers });

/** Resolves with the HTTP status of a WebSocket handshake (101 when it opened). */
function handshake(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

describe('API keys on /v1', () => {
  it('refuses a request without a key with 401 unauthorized and a Bearer challenge', async () => {
    const res = await get('/v1/models');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const body = await json(res);
    expect(body.error.code).toBe('unauthorized');
    expect(body.error.message).toMatch(/Authorization: Bearer/);
  });

  it('refuses a wrong key, a key of another length and an empty Bearer', async () => {
    const attempts: Record<string, string>[] = [
      { authorization: 'Bearer key-three' },
      { authorization: 'Bearer k' },
      { 'x-api-key': 'key-one-and-more' },
      { authorization: 'Bearer ' },
    ];
    for (const headers of attempts) {
      const res = await get('/v1/models', headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
    }
  });

  it('accepts each key as Authorization: Bearer or as X-API-Key', async () => {
    expect((await get('/v1/models', { authorization: 'Bearer key-one' })).status).toBe(200);
    expect((await get('/v1/models', { authorization: 'bearer key-two' })).status).toBe(200);
    expect((await get('/v1/models', { 'x-api-key': 'key-two' })).status).toBe(200);
    const res = await stack.post(
      '/v1/models/breast-cancer/predict',
      { features: BREAST_CANCER_ROW },
      { 'x-api-key': 'key-one' },
    );
    expect(res.status).toBe(200);
  });

  it('guards every /v1 route, unknown ones included, before reading the body', async () => {
    const post = await stack.post('/v1/jobs', 'not json at all');
    expect(post.status).toBe(401);
    expect((await get('/v1/jobs/some-id')).status).toBe(401);
    expect((await get('/v1/batches/some-id')).status).toBe(401);
    expect((await get('/v1/no-such-route')).status).toBe(401);
  });

  it('leaves health, metrics, the OpenAPI document and the docs open', async () => {
    for (const path of ['/health/live', '/health/ready', '/metrics', '/openapi.json', '/docs']) {
      expect((await get(path)).status, path).toBe(200);
    }
  });

  it('keeps /admin on the admin token, not on API keys', async () => {
    expect((await get('/admin/queues', { authorization: 'Bearer key-one' })).status).toBe(401);
    expect((await get('/admin/queues', { authorization: 'Bearer admin-tok' })).status).toBe(200);
  });
});

describe('API keys on /v2', () => {
  it('refuses /v2 without a key with 401 and the protocol error body', async () => {
    const res = await get('/v2/models/breast-cancer');
    expect(res.status).toBe(401);
    const body = await json(res);
    expect(typeof body.error).toBe('string');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('accepts a key on /v2 and leaves its health probes open', async () => {
    const res = await get('/v2/models/breast-cancer', { 'x-api-key': 'key-one' });
    expect(res.status).not.toBe(401);
    expect((await get('/v2/health/live')).status).toBe(200);
  });
});

describe('API keys on the WebSocket handshake', () => {
  const url = () => `ws://127.0.0.1:${port}/v1/ws`;

  it('refuses a handshake without a key with 401', async () => {
    expect(await handshake(url())).toBe(401);
    expect(await handshake(`${url()}?access_token=wrong`)).toBe(401);
  });

  it('opens with the key as a header or as ?access_token= for browsers', async () => {
    expect(await handshake(url(), { authorization: 'Bearer key-one' })).toBe(101);
    expect(await handshake(`${url()}?access_token=key-two`)).toBe(101);
  });

  it('reads ?access_token= only on the WebSocket path', async () => {
    expect((await get('/v1/models?access_token=key-one')).status).toBe(401);
  });
});

describe('secretMatches', () => {
  it('compares secrets of any length without throwing and matches only equal ones', () => {
    const keys = ['a', 'a much longer key than the other one'].map(digestOf);
    expect(secretMatches('a', keys)).toBe(true);
    expect(secretMatches('a much longer key than the other one', keys)).toBe(true);
    expect(secretMatches('', keys)).toBe(false);
    expect(secretMatches('b'.repeat(10_000), keys)).toBe(false);
  });
});
