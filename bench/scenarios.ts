import { Redis } from 'ioredis';
import { get } from 'node:http';
import { runLoad, type LoadResult } from './lib/load.js';
import { median, parseServerTiming, percentile, type Breakdown } from './lib/stats.js';

/** Where the system under test answers. */
export interface Target {
  apiUrl: string;
  redisUrl: string;
}

/** A load figure with the server-side breakdown. */
export interface Measured extends LoadResult {
  connections: number;
  breakdown?: Breakdown;
}

/** The README's breast-cancer row: the cache-hit input. */
export const HIT_ROW = [
  17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589,
  153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622,
  0.6656, 0.7119, 0.2654, 0.4601, 0.1189,
];

let seedCounter = Date.now() % 1_000_000;
const nextSeed = (n: number) => (seedCounter += n + 1_000_000);

function uniqueRow(k: number, width: number): number[] {
  return Array.from(
    { length: width },
    (_, i) => ((k * 7919 + i * 104_729) % 100_000) / 1000 + (k % 89) / 89,
  );
}

/** Medians of Server-Timing over `n` sequential requests made by `body(i)`. */
export async function breakdown(
  url: string,
  n: number,
  body: (i: number) => string,
): Promise<Breakdown> {
  const queue: number[] = [];
  const infer: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(i),
    });
    await res.arrayBuffer();
    const t = parseServerTiming(res.headers.get('server-timing'));
    if (t.queue !== undefined) queue.push(t.queue);
    if (t.infer !== undefined) infer.push(t.infer);
    if (t.total !== undefined) total.push(t.total);
  }
  return { queueMs: median(queue) || 0, inferMs: median(infer) || 0, totalMs: median(total) };
}

/** Online requests answered from the cache: the same input every time. */
export async function cacheHit(
  t: Target,
  connections: number,
  durationS: number,
): Promise<Measured> {
  const url = `${t.apiUrl}/v1/models/breast-cancer/predict`;
  const body = JSON.stringify({ features: HIT_ROW });
  await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
    (r) => r.arrayBuffer(),
  );
  const load = await runLoad({ url, method: 'POST', connections, durationS, body });
  return { ...load, connections, breakdown: await breakdown(url, 50, () => body) };
}

/** Online requests with unique inputs: every one is a cache miss and goes through the queue. */
export async function cacheMiss(
  t: Target,
  model: string,
  width: number,
  connections: number,
  durationS: number,
): Promise<Measured> {
  const url = `${t.apiUrl}/v1/models/${model}/predict`;
  const load = await runLoad({
    url,
    method: 'POST',
    connections,
    durationS,
    uniqueWidth: width,
    seed: nextSeed(0),
  });
  const seed = nextSeed(0);
  return {
    ...load,
    connections,
    breakdown: await breakdown(url, 50, (i) =>
      JSON.stringify({ features: uniqueRow(seed + i, width) }),
    ),
  };
}

/** Total commands Redis has executed (INFO commandstats, every command summed). */
export async function redisCommands(redisUrl: string): Promise<number> {
  const redis = new Redis(redisUrl);
  try {
    const info = await redis.info('commandstats');
    let calls = 0;
    for (const m of info.matchAll(/calls=(\d+)/g)) calls += Number(m[1]);
    return calls;
  } finally {
    redis.disconnect();
  }
}

/** Redis commands per cache-miss online prediction at 64 connections. */
export async function onlineRedisCost(t: Target, requests: number): Promise<number> {
  const url = `${t.apiUrl}/v1/models/breast-cancer/predict`;
  const before = await redisCommands(t.redisUrl);
  const load = await runLoad({
    url,
    method: 'POST',
    connections: 64,
    amount: requests,
    uniqueWidth: 30,
    seed: nextSeed(0),
  });
  const after = await redisCommands(t.redisUrl);
  return (after - before) / Math.max(load.total, 1);
}

/** A 100,000-row (or `rows`) NDJSON batch: upload, run, read every result. */
export async function batchEndToEnd(
  t: Target,
  ndjson: string,
  rows: number,
): Promise<{ rowsPerSec: number; seconds: number; redisPerRow: number; resultLines: number }> {
  const before = await redisCommands(t.redisUrl);
  const started = performance.now();
  const res = await fetch(`${t.apiUrl}/v1/batches?model=breast-cancer`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: ndjson,
  });
  if (res.status !== 202)
    throw new Error(`batch upload answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const results = await fetch(`${t.apiUrl}/v1/batches/${id}/results`);
  const text = await results.text();
  const seconds = (performance.now() - started) / 1000;
  const after = await redisCommands(t.redisUrl);
  const resultLines = text.split('\n').filter((l) => l.length > 0).length;
  return { rowsPerSec: rows / seconds, seconds, redisPerRow: (after - before) / rows, resultLines };
}

/** Outcome of the waiters scenario. */
export interface WaitersResult {
  waiters: number;
  answered: number;
  completed: number;
  p50DelayMs: number;
  p99DelayMs: number;
  apiRssMb: number;
}

/**
 * `n` jobs queued while no worker runs, `n` long-polls open on them, then a worker starts:
 * every long-poll must be answered, soon after its own job finished.
 */
export async function waiters(
  t: Target,
  n: number,
  startWorker: () => Promise<void>,
  apiRss: () => Promise<number>,
): Promise<WaitersResult> {
  const seed = nextSeed(n);
  const ids: string[] = [];
  for (let start = 0; start < n; start += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, n - start) }, async (_, i) => {
        const res = await fetch(`${t.apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'breast-cancer',
            features: uniqueRow(seed + start + i, 30),
          }),
        });
        return ((await res.json()) as { id: string }).id;
      }),
    );
    ids.push(...batch);
  }
  const delays: number[] = [];
  let completed = 0;
  // One socket per waiter (no agent pooling), as 10,000 separate clients would open.
  const polls = ids.map(
    (id) =>
      new Promise<void>((resolve, reject) => {
        const req = get(`${t.apiUrl}/v1/jobs/${id}?wait=60`, { agent: false }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            const answeredAt = Date.now();
            const body = JSON.parse(text) as { status: string; finishedAt?: string };
            if (body.status === 'completed') completed++;
            if (body.finishedAt) delays.push(answeredAt - Date.parse(body.finishedAt));
            resolve();
          });
        });
        req.on('error', reject);
      }),
  );
  await new Promise((r) => setTimeout(r, Math.min(15_000, 2000 + n / 2)));
  const rss = await apiRss();
  await startWorker();
  const settled = await Promise.allSettled(polls);
  return {
    waiters: n,
    answered: settled.filter((s) => s.status === 'fulfilled').length,
    completed,
    p50DelayMs: percentile(delays, 50),
    p99DelayMs: percentile(delays, 99),
    apiRssMb: rss,
  };
}
