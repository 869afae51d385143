import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeKeys, uniquePrefix } from '../helpers/env.js';
import { WsClient } from '../helpers/live-clients.js';
import { startApiProcess, stopAll, type ApiProcess } from '../helpers/processes.js';

// Issue 10, item 8: one WebSocket sent 1,000 predictions in 0.6 s past RATE_LIMIT_RPS=2, and
// with TRUST_PROXY a random leftmost X-Forwarded-For escaped the limit entirely.

/** A message the server answers at once when allowed (no worker needed): a wrong width. */
const message = (ref: string) => ({ ref, model: 'breast-cancer', features: [1, 2, 3] });

describe('WebSocket messages are charged to the key (real API process, keyA and keyB)', () => {
  const prefix = uniquePrefix('wsrl');
  let api: ApiProcess;

  beforeAll(async () => {
    api = await startApiProcess({
      QUEUE_PREFIX: prefix,
      API_KEYS: 'keyA,keyB',
      RATE_LIMIT_RPS: '1',
      RATE_LIMIT_BURST: '4',
      MODEL_RESCAN_MS: '0',
    });
  });

  afterAll(async () => {
    await stopAll([api]);
    await removeKeys(prefix);
  });

  it('refuses a flood of 1,000 messages past the rate with rate_limited, each with its ref, socket open', async () => {
    const client = await WsClient.connect(`ws://127.0.0.1:${api.port}/v1/ws`, {
      'x-api-key': 'keyA',
    });
    try {
      const started = performance.now();
      for (let i = 0; i < 1000; i++) client.send(message(`m${i}`));
      const answers = await client.take(1000);
      const elapsedS = (performance.now() - started) / 1000;
      const limited = answers.filter((a) => a.error?.code === 'rate_limited');
      const served = answers.filter((a) => a.error?.code === 'validation_error');
      expect(limited.length + served.length).toBe(1000);
      // The handshake took one of the burst of 4; the rest refill at 1 a second.
      expect(served.length).toBeLessThanOrEqual(4 + Math.ceil(elapsedS));
      expect(new Set(limited.map((a) => a.ref)).size).toBe(limited.length);
      expect(limited[0]).toMatchObject({ status: 'failed', error: { code: 'rate_limited' } });
      expect(limited[0].error.message).toMatch(/retry in \d+ s/);
      // Still open: after the refill, a message is served again.
      await new Promise((r) => setTimeout(r, 1100));
      client.send(message('later'));
      expect(await client.next()).toMatchObject({
        ref: 'later',
        error: { code: 'validation_error' },
      });
    } finally {
      await client.close();
    }
  });

  it("charges messages to the key's own budget, the one its HTTP requests use", async () => {
    // keyA spent its budget above; keyB's is whole.
    const client = await WsClient.connect(`ws://127.0.0.1:${api.port}/v1/ws`, {
      'x-api-key': 'keyB',
    });
    try {
      for (let i = 0; i < 10; i++) client.send(message(`n${i}`));
      const answers = await client.take(10);
      const served = answers.filter((a) => a.error?.code === 'validation_error').length;
      // The handshake and 3 messages took the burst of 4 (a refill may add one).
      expect(served).toBeGreaterThanOrEqual(3);
      expect(served).toBeLessThanOrEqual(5);
      // Had the messages been free, keyB would have 3 of its burst left for HTTP.
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${api.url}/v1/models`, { headers: { 'x-api-key': 'keyB' } });
        statuses.push(res.status);
      }
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
    }
  });

  it('charges malformed messages too: none can be sent for free', async () => {
    // Two refilled tokens of keyA: one for the handshake, one message at most.
    await new Promise((r) => setTimeout(r, 2100));
    const client = await WsClient.connect(`ws://127.0.0.1:${api.port}/v1/ws`, {
      'x-api-key': 'keyA',
    });
    try {
      for (let i = 0; i < 50; i++) client.send('{"ref": "broken", ');
      const answers = await client.take(50);
      const limited = answers.filter((a) => a.error?.code === 'rate_limited').length;
      expect(limited).toBeGreaterThanOrEqual(45);
      expect(answers.filter((a) => a.error?.code === 'invalid_json').length).toBe(50 - limited);
    } finally {
      await client.close();
    }
  });
});

describe('X-Forwarded-For is read from the right (real API process, TRUST_PROXY)', () => {
  const prefix = uniquePrefix('xff');
  const procs: ApiProcess[] = [];
  const env = {
    QUEUE_PREFIX: prefix,
    TRUST_PROXY: 'true',
    RATE_LIMIT_RPS: '1',
    RATE_LIMIT_BURST: '3',
    MODEL_RESCAN_MS: '0',
  };

  beforeAll(async () => {
    procs.push(await startApiProcess(env));
    procs.push(await startApiProcess({ ...env, TRUST_PROXY_HOPS: '2' }));
  });

  afterAll(async () => {
    await stopAll(procs);
    await removeKeys(prefix);
  });

  const random = () => `${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.0.1`;

  async function statuses(url: string, forwarded: () => string, n: number): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${url}/v1/models`, { headers: { 'x-forwarded-for': forwarded() } });
      out.push(res.status);
    }
    return out;
  }

  it('limits a client that puts a new address on the left of each request (one proxy hop)', async () => {
    const got = await statuses(procs[0]!.url, () => `${random()}, 203.0.113.7`, 12);
    expect(got.filter((s) => s === 200).length).toBeLessThanOrEqual(4);
    expect(got.slice(-5)).toEqual([429, 429, 429, 429, 429]);
    // Another client behind the same proxy has its own budget.
    expect(await statuses(procs[0]!.url, () => '203.0.113.8', 1)).toEqual([200]);
  });

  it('reads the entry TRUST_PROXY_HOPS from the right behind two proxies', async () => {
    const got = await statuses(
      procs[1]!.url,
      () => `${random()}, 198.51.100.9, 10.0.0.${Math.floor(Math.random() * 200)}`,
      12,
    );
    expect(got.filter((s) => s === 200).length).toBeLessThanOrEqual(4);
    expect(got.slice(-5)).toEqual([429, 429, 429, 429, 429]);
    // A header shorter than the hops (a client talking to the inner proxy) keeps its leftmost.
    expect(await statuses(procs[1]!.url, () => '198.51.100.10', 1)).toEqual([200]);
  });
});
