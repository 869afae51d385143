import type { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { removeKeys, uniquePrefix } from '../helpers/env.js';
import { keepAliveAgent, send, type RawRequest } from '../helpers/http-client.js';
import { startApiProcess, stopAll, type ApiProcess } from '../helpers/processes.js';

// Issue 10, item 5: a refused body used to leave its reader attached, the server destroyed the
// socket 500 ms later, and the client's next keep-alive request on it was reset.

const KEY_A = { 'x-api-key': 'keyA' };
const JSON_A = { ...KEY_A, 'content-type': 'application/json' };
const NDJSON_A = { ...KEY_A, 'content-type': 'application/x-ndjson' };
const ROW_LINE = `${JSON.stringify({ features: BREAST_CANCER_ROW })}\n`;

const filler = (bytes: number, char = 'a') => new TextEncoder().encode(char.repeat(bytes));
const chunksOf = (count: number, bytes: number, char = 'a') =>
  Array.from({ length: count }, () => filler(bytes, char));

/** Requests the server answers before reading their body to the end, and the status each gets. */
const REFUSED: [string, RawRequest, number][] = [
  [
    'a chunked body over MAX_BODY_BYTES',
    { method: 'POST', path: '/v1/jobs', headers: JSON_A, chunks: chunksOf(12, 16_384) },
    413,
  ],
  [
    'a declared Content-Length over MAX_BODY_BYTES',
    {
      method: 'POST',
      path: '/v1/models/breast-cancer/predict',
      headers: JSON_A,
      body: filler(200_000),
    },
    413,
  ],
  [
    'a body without an API key',
    {
      method: 'POST',
      path: '/v1/jobs',
      headers: { 'content-type': 'application/json' },
      chunks: chunksOf(4, 16_384),
    },
    401,
  ],
  [
    'a body of an unsupported media type',
    {
      method: 'POST',
      path: '/v1/models/breast-cancer/predict',
      headers: { ...KEY_A, 'content-type': 'text/plain' },
      body: filler(48_000),
    },
    415,
  ],
  [
    'a body to an unknown route',
    { method: 'POST', path: '/v1/nowhere', headers: JSON_A, body: filler(48_000) },
    404,
  ],
  [
    'a chunked body to an unknown route',
    { method: 'POST', path: '/v1/nowhere', headers: JSON_A, chunks: chunksOf(3, 16_384) },
    404,
  ],
  [
    'an NDJSON upload with a bad line 2 and more after it',
    {
      method: 'POST',
      path: '/v1/batches?model=breast-cancer',
      headers: NDJSON_A,
      chunks: [
        new TextEncoder().encode(`${ROW_LINE}{"features": "x"}\n`),
        ...chunksOf(8, 16_384, '\n'),
      ],
    },
    422,
  ],
  [
    'an NDJSON upload over MAX_BATCH_BYTES',
    {
      method: 'POST',
      path: '/v1/batches?model=breast-cancer',
      headers: NDJSON_A,
      // 16 lines of 1 KiB a chunk: 384 lines (under MAX_BATCH_ROWS), 384 KiB (over MAX_BATCH_BYTES)
      chunks: chunksOf(24, 16_384, ' ').map((c) => c.map((b, i) => (i % 1024 === 1023 ? 10 : b))),
    },
    413,
  ],
  [
    'an NDJSON upload declaring more than MAX_BATCH_BYTES',
    {
      method: 'POST',
      path: '/v1/batches?model=breast-cancer',
      headers: NDJSON_A,
      body: filler(300_000, '\n'),
    },
    413,
  ],
];

const ORDINARY: RawRequest = { method: 'GET', path: '/v1/models', headers: KEY_A };

describe('a body not read to the end (real API process, keep-alive client)', () => {
  const prefix = uniquePrefix('unread');
  let api: ApiProcess;

  beforeAll(async () => {
    api = await startApiProcess({
      QUEUE_PREFIX: prefix,
      API_KEYS: 'keyA,keyB',
      MAX_BODY_BYTES: '65536',
      MAX_BATCH_BYTES: '262144',
      MAX_BATCH_ROWS: '1000',
      DEFAULT_WAIT_S: '0',
      MAX_WAIT_S: '0',
      MODEL_RESCAN_MS: '0',
    });
  });

  afterAll(async () => {
    await stopAll([api]);
    await removeKeys(prefix);
  });

  it.each(REFUSED)(
    'answers %s with Connection: close, and the next requests on the agent succeed',
    async (_name, hostile, status) => {
      const agent = keepAliveAgent(1);
      try {
        // A warm socket first, so that the hostile request rides a reused connection.
        expect((await send(agent, api.url, ORDINARY)).status).toBe(200);
        const refused = await send(agent, api.url, hostile);
        expect(refused.status).toBe(status);
        expect(refused.headers.connection).toBe('close');
        expect(JSON.parse(refused.body)).toMatchObject({ error: { code: expect.any(String) } });
        for (let i = 0; i < 3; i++) expect((await send(agent, api.url, ORDINARY)).status).toBe(200);
      } finally {
        agent.destroy();
      }
    },
  );

  it('keeps the connection of a request whose body was read, even when it is refused', async () => {
    const agent = keepAliveAgent(1);
    try {
      const invalid = await send(agent, api.url, {
        method: 'POST',
        path: '/v1/models/breast-cancer/predict',
        headers: JSON_A,
        body: JSON.stringify({ features: [1, 2, 3] }),
      });
      expect(invalid.status).toBe(422);
      expect(invalid.headers.connection).toBe('keep-alive');
      const next = await send(agent, api.url, ORDINARY);
      expect(next.status).toBe(200);
      expect(next.reused).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('drops no request of 400 refused bodies interleaved with ordinary ones, 8 sockets at a time', async () => {
    const agent = keepAliveAgent(8);
    const drops: string[] = [];
    const statuses = new Map<number, number>();
    try {
      const queue = Array.from({ length: 800 }, (_, i) =>
        i % 2 === 0 ? (REFUSED[(i / 2) % REFUSED.length]?.[1] ?? ORDINARY) : ORDINARY,
      );
      const loop = async (agentOf: Agent) => {
        for (let r = queue.shift(); r; r = queue.shift()) {
          try {
            const res = await send(agentOf, api.url, r);
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          } catch (err) {
            drops.push((err as Error).message);
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, () => loop(agent)));
    } finally {
      agent.destroy();
    }
    expect(drops).toEqual([]);
    expect(statuses.get(200)).toBe(400);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
  }, 60_000);
});
