import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForReady } from '../../src/shared/redis.js';
import { createStack, type TestStack } from '../helpers/stack.js';
import {
  CONTENT_TYPES,
  METHODS,
  MODEL_NAMES,
  POST_ROUTES,
  ROUTES,
  VERSIONS,
  headerCases,
  hostileBodies,
  modelPathCases,
  randomBodies,
  versionCases,
  type HostileCase,
} from './hostile-cases.js';

/** Every case generated, in a fixed order. */
function allCases(): HostileCase[] {
  const json = { 'content-type': 'application/json' };
  return [
    ...POST_ROUTES.flatMap((path) =>
      hostileBodies().map((body) => ({ method: 'POST', path, headers: json, body })),
    ),
    ...POST_ROUTES.flatMap((path) =>
      randomBodies(12, path.length).map((body) => ({ method: 'POST', path, headers: json, body })),
    ),
    ...POST_ROUTES.flatMap((path) =>
      CONTENT_TYPES.map((type) => ({
        method: 'POST',
        path,
        headers: { 'content-type': type },
        body: '{"features":[1]}',
      })),
    ),
    ...MODEL_NAMES.flatMap(modelPathCases),
    ...VERSIONS.flatMap(versionCases),
    ...ROUTES.flatMap((path) => METHODS.map((method) => ({ method, path }))),
    ...headerCases(),
  ];
}

/** Why a response breaks the contract, or undefined when it keeps it. */
async function violation(c: HostileCase, res: Response): Promise<string | undefined> {
  const text = await res.text();
  if (res.status >= 500) return `status ${res.status}: ${text.slice(0, 200)}`;
  if (res.status < 400 || c.method === 'HEAD') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `status ${res.status} with a non-JSON body: ${text.slice(0, 200)}`;
  }
  const error = (body as { error?: unknown }).error;
  const v2 = c.path.startsWith('/v2/') || c.path === '/v2';
  if (v2 && typeof error === 'string' && error.length > 0) return undefined;
  if (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { message?: unknown }).message === 'string'
  ) {
    return undefined;
  }
  return `status ${res.status} outside the error envelope: ${text.slice(0, 200)}`;
}

function label(c: HostileCase): string {
  const body = typeof c.body === 'string' ? c.body.slice(0, 60) : c.body ? '<bytes>' : '';
  return `${c.method} ${c.path.slice(0, 80)} ${body}`;
}

describe('hostile and malformed requests', () => {
  let stack: TestStack;

  beforeAll(async () => {
    // With a worker, a request that happens to be valid is answered 200 (/v2 has no 202).
    stack = await createStack({ env: { DEFAULT_WAIT_S: '10', MAX_WAIT_S: '10' } });
    // buildApi does not wait for its producer connection; a request before it is up gets 503.
    await waitForReady(stack.api.deps.redis);
  });

  afterAll(async () => {
    await stack?.close();
  });

  it('answers 1,000+ generated hostile requests without a 5xx, each error in the envelope', async () => {
    const cases = allCases();
    expect(cases.length).toBeGreaterThanOrEqual(1000);
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    // Bodies of megabytes cost ~1 s of CPU each on a shared machine: send those one at a time so
    // no request waits behind several of them (a Redis command would time out into a 503).
    const heavy = (c: HostileCase) => (c.body?.length ?? 0) > 100_000;
    const queue = cases.filter((c) => !heavy(c));
    const run = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const res = await stack.request(c.path, {
          method: c.method,
          headers: c.headers,
          body: c.body,
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const problem = await violation(c, res);
        if (problem) problems.push(`${label(c)} -> ${problem}`);
      }
    };
    await Promise.all(Array.from({ length: 4 }, run));
    queue.push(...cases.filter(heavy));
    await run();
    expect(problems.slice(0, 40)).toEqual([]);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
  }, 120_000);

  it('lets no prototype-pollution key reach Object.prototype', () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('still serves models and health after the barrage', async () => {
    expect((await stack.request('/health/live')).status).toBe(200);
    expect((await stack.request('/v1/models')).status).toBe(200);
  });
});

/** Sends raw bytes over a socket and resolves with what came back before the close. */
function rawExchange(port: number, payload: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (/\r\n\r\n/.test(out) && /^HTTP\/1\.1 (\d+)/.test(out)) {
        // Enough to read the status line; give the body a moment, then close.
        setTimeout(done, 50);
      }
    });
    socket.on('error', done);
    socket.on('close', done);
    socket.write(payload);
  });
}

function statusOf(reply: string): number {
  return Number(/^HTTP\/1\.1 (\d+)/.exec(reply)?.[1] ?? 0);
}

describe('hostile requests over a real socket', () => {
  let stack: TestStack;
  let port: number;

  beforeAll(async () => {
    stack = await createStack({
      worker: false,
      env: { DEFAULT_WAIT_S: '0', MAX_WAIT_S: '0', MAX_BODY_BYTES: '65536' },
    });
    port = await stack.api.listen(0, '127.0.0.1');
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("answers headers over Node's 16 KiB limit with 431, a 4xx from Node itself", async () => {
    const reply = await rawExchange(
      port,
      `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(statusOf(reply)).toBe(431);
  });

  it('answers a malformed request line and a bad Content-Length with 400', async () => {
    expect(statusOf(await rawExchange(port, 'GARBAGE\r\n\r\n'))).toBe(400);
    const reply = await rawExchange(
      port,
      'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}',
    );
    expect(statusOf(reply)).toBe(400);
  });

  it('refuses a chunked body over MAX_BODY_BYTES with 413 in the envelope', async () => {
    const chunk = 'a'.repeat(16_384);
    const chunks = Array.from({ length: 8 }, () => `4000\r\n${chunk}\r\n`).join('');
    const reply = await rawExchange(
      port,
      `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}0\r\n\r\n`,
    );
    expect(statusOf(reply)).toBe(413);
    expect(reply).toMatch(/"code":"payload_too_large"/);
  });

  it('survives a client that announces a body and hangs up early', async () => {
    await rawExchange(
      port,
      'POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":',
      300,
    );
    const res = await fetch(`http://127.0.0.1:${port}/health/live`);
    expect(res.status).toBe(200);
  });

  it('answers 2,000 headers and a NUL in the path without a 5xx', async () => {
    const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: v`).join('\r\n');
    const reply = await rawExchange(port, `GET /v1/models HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`);
    expect(statusOf(reply)).toBeGreaterThanOrEqual(200);
    expect(statusOf(reply)).toBeLessThan(500);
    const nul = await rawExchange(port, 'GET /v1/models/a%00b HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(statusOf(nul)).toBe(404);
  });
});
