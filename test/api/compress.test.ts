import { gunzipSync } from 'node:zlib';
import { Hono } from 'hono';
import { stream, streamSSE } from 'hono/streaming';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compressLarge } from '../../src/api/http/compress.js';
import { respondJson } from '../../src/api/http/request-frame.js';
import type { AppEnv } from '../../src/api/deps.js';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { removeKeys, testConfig, testLogger } from '../helpers/env.js';

const GZIP = { 'accept-encoding': 'gzip, deflate' };

describe('compression of API responses', () => {
  let api: ApiHandle;
  beforeAll(async () => {
    api = await buildApi(testConfig(), testLogger());
  });
  afterAll(async () => {
    await api?.close();
    await removeKeys(api.deps.config.QUEUE_PREFIX);
  });

  it('leaves small JSON answers uncompressed, with their length', async () => {
    const res = await api.app.request('/health/live', { headers: GZIP });
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(res.headers.get('content-length')).toBe(String((await res.text()).length));
  });

  it('compresses large model metadata and still answers 304 to its (now weak) ETag', async () => {
    const res = await api.app.request('/v1/models/breast-cancer', { headers: GZIP });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(res.headers.get('cache-control')).toMatch(/max-age/);
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^W\/"/);
    const body = JSON.parse(gunzipSync(Buffer.from(await res.arrayBuffer())).toString('utf8'));
    expect(body.name).toBe('breast-cancer');
    const again = await api.app.request('/v1/models/breast-cancer', {
      headers: { ...GZIP, 'if-none-match': etag! },
    });
    expect(again.status).toBe(304);
  });
});

describe('compressLarge on streams', () => {
  const app = new Hono();
  app.use('*', compressLarge(16));
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  app.get('/ndjson', (c) => {
    c.header('Content-Type', 'application/x-ndjson');
    return stream(c, async (s) => {
      await s.write(`${JSON.stringify({ index: 0, pad: 'x'.repeat(2000) })}\n`);
      await released;
      await s.write(`${JSON.stringify({ index: 1 })}\n`);
    });
  });
  app.get('/sse', (c) =>
    streamSSE(c, async (s) => {
      await s.writeSSE({ event: 'status', data: 'x'.repeat(2000) });
    }),
  );

  it('sends NDJSON uncompressed, line by line, while the stream is still open', async () => {
    const res = await app.request('/ndjson', { headers: GZIP });
    expect(res.headers.get('content-encoding')).toBeNull();
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('"index":0');
    release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      rest += new TextDecoder().decode(r.value);
    }
    expect(rest).toContain('"index":1');
  });

  it('never compresses Server-Sent Events', async () => {
    const res = await app.request('/sse', { headers: GZIP });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(await res.text()).toContain('event: status');
  });
});

describe('compressLarge on answers made by respondJson (predictions)', () => {
  const app = new Hono<AppEnv>();
  app.use('*', compressLarge(256));
  app.get('/small', (c) => respondJson(c, { prediction: 1, label: 'benign' }));
  app.get('/large', (c) => respondJson(c, { predictions: Array.from({ length: 200 }, () => 1) }));

  it('leaves a small one as it is, unopened and uncompressed', async () => {
    const res = await app.request('/small', { headers: GZIP });
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(await res.json()).toEqual({ prediction: 1, label: 'benign' });
  });

  it('still compresses one over the threshold', async () => {
    const res = await app.request('/large', { headers: GZIP });
    expect(res.headers.get('content-encoding')).toBe('gzip');
    const body = JSON.parse(gunzipSync(Buffer.from(await res.arrayBuffer())).toString('utf8'));
    expect(body.predictions).toHaveLength(200);
  });
});
