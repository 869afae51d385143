import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deferredJson } from '../../src/api/http/deferred-json.js';

/** deferredJson on a real Node server (@hono/node-server), as the API serves job long-polls. */
describe('deferredJson', () => {
  let server: ServerType;
  let url: string;
  const errors: unknown[] = [];

  beforeAll(async () => {
    const app = new Hono();
    app.use('*', async (c, next) => {
      await next();
      c.header('X-After', 'set after the handler returned');
    });
    const options = { closing: () => false, onError: (err: unknown) => errors.push(err) };
    app.get('/later', (c) =>
      deferredJson(c, () => new Promise((r) => setTimeout(() => r({ ok: true }), 50)), options),
    );
    app.get('/broken', (c) => deferredJson(c, () => Promise.reject(new Error('boom')), options));
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('writes the value later, with the headers middlewares set after the handler returned', async () => {
    const res = await fetch(`${url}/later`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-after')).toBe('set after the handler returned');
    expect(res.headers.get('x-hono-already-sent')).toBeNull();
    expect(await res.json()).toEqual({ ok: true });
  });

  it('answers 500 in the error envelope, without the error text, when the value cannot be had', async () => {
    const res = await fetch(`${url}/broken`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'internal_error' } });
    expect(text).not.toContain('boom');
    expect(errors).toHaveLength(1);
  });
});
