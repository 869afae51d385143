import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { spawnInferq, stopChild } from '../../src/cli/children.js';
import { eventually, removeKeys, testConfig, testLogger, uniquePrefix } from '../helpers/env.js';
import { freePort } from '../helpers/redis-server.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();

const TOKEN = 'admin-secret-token';
const bearer = { authorization: `Bearer ${TOKEN}` };
const basic = (user: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
});

async function build(env: Record<string, string>): Promise<ApiHandle> {
  return buildApi(testConfig(env), testLogger());
}

async function close(api: ApiHandle | undefined): Promise<void> {
  if (!api) return;
  await api.close();
  await removeKeys(api.deps.config.QUEUE_PREFIX);
}

describe('Bull Board at /admin/queues', () => {
  let api: ApiHandle;
  beforeAll(async () => {
    api = await build({ ADMIN_TOKEN: TOKEN });
  });
  afterAll(() => close(api));

  const get = (path: string, headers: Record<string, string> = {}) =>
    api.app.request(path, { headers });

  it('serves the board and one of its static assets with the token', async () => {
    const page = await get('/admin/queues', bearer);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('<base href="/admin/queues/"');
    const asset = /(?:src|href)="(static\/[^"]+\.(?:js|css))"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const file = await get(`/admin/queues/${asset}`, bearer);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toMatch(/javascript|css/);
    expect((await file.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  });

  it('refuses the board and its assets without the token, prompting browsers for Basic auth', async () => {
    const html = await (await get('/admin/queues', bearer)).text();
    const asset = /(?:src|href)="(static\/[^"]+\.(?:js|css))"/.exec(html)?.[1];
    for (const path of ['/admin/queues', '/admin/queues/', `/admin/queues/${asset}`]) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="inferq"/);
      expect((await json(res)).error.code).toBe('unauthorized');
    }
    expect((await get('/admin/queues', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get('/admin/queues', basic('admin', 'wrong'))).status).toBe(401);
  });

  it('accepts the token as the Basic auth password with any user name', async () => {
    expect((await get('/admin/queues', basic('anyone', TOKEN))).status).toBe(200);
    expect((await get('/admin/queues/', basic('', TOKEN))).status).toBe(200);
  });

  it("lists the prediction queue through the board's own API", async () => {
    const res = await get('/admin/queues/api/queues', bearer);
    expect(res.status).toBe(200);
    const body = await json(res);
    const names = body.queues.map((q: { name: string }) => q.name);
    expect(names).toContain('predict');
    expect(body.queues[0].readOnlyMode).toBe(false);
    expect((await get('/admin/queues/api/queues')).status).toBe(401);
  });
});

describe('Bull Board settings', () => {
  let off: ApiHandle | undefined;
  let readOnly: ApiHandle | undefined;
  afterAll(async () => {
    await close(off);
    await close(readOnly);
  });

  it('is not mounted at all without ADMIN_TOKEN', async () => {
    off = await build({});
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const res = await off.app.request(path, { headers: bearer });
      expect(res.status).toBe(404);
      expect((await json(res)).error.code).toBe('not_found');
    }
    expect(off.app.routes.some((r) => r.path.startsWith('/admin'))).toBe(false);
  });

  it('offers no actions with ADMIN_READ_ONLY', async () => {
    readOnly = await build({ ADMIN_TOKEN: TOKEN, ADMIN_READ_ONLY: 'true' });
    const res = await readOnly.app.request('/admin/queues/api/queues', { headers: bearer });
    expect((await json(res)).queues[0].readOnlyMode).toBe(true);
  });
});

describe('inferq start', () => {
  let child: ChildProcess | undefined;
  const prefix = uniquePrefix('start');
  afterAll(async () => {
    if (child) await stopChild(child);
    await removeKeys(prefix);
  });

  it('makes an admin token, prints the board URL with it, and the board opens with it', async () => {
    const port = await freePort();
    let out = '';
    child = spawnInferq(['start'], {
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        QUEUE_PREFIX: prefix,
        ADMIN_TOKEN: '',
        WORKER_METRICS_PORT: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    await eventually(() => out.includes('the password '), 45_000, 100);
    expect(out).toContain(`http://127.0.0.1:${port}/admin/queues`);
    const token = /the password (\S+)/.exec(out)?.[1] ?? '';
    expect(token.length).toBeGreaterThanOrEqual(20);
    const url = `http://127.0.0.1:${port}/admin/queues`;
    expect((await fetch(url)).status).toBe(401);
    const res = await fetch(url, { headers: basic('me', token) });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<base href="/admin/queues/"');
  });
});
