import { measuredLoad, SETTLE_MS, type Bench, type Run } from './lib/measure.js';
import { costBetween, perUnit, redisSnapshot, type RedisCost } from './lib/redis-info.js';
import { HIT_ROW, uniqueRow } from './lib/rows.js';
import { median, parseServerTiming, type Breakdown } from './lib/stats.js';

const predictUrl = (apiUrl: string) => `${apiUrl}/v1/models/breast-cancer/predict`;

/** Online requests answered from the cache: the same input every time. */
export async function cacheHit(
  b: Bench,
  apiUrl: string,
  connections: number,
  durationS: number,
): Promise<Run> {
  const body = JSON.stringify({ features: HIT_ROW });
  const res = await fetch(predictUrl(apiUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await res.arrayBuffer();
  return measuredLoad(b, { url: predictUrl(apiUrl), method: 'POST', connections, durationS, body });
}

/** Online requests with inputs unique in float32: every one is a cache miss through the queue. */
export function cacheMiss(
  b: Bench,
  apiUrl: string,
  connections: number,
  durationS: number,
): Promise<Run> {
  return measuredLoad(b, {
    url: predictUrl(apiUrl),
    method: 'POST',
    connections,
    durationS,
    uniqueWidth: 30,
    seed: b.rows.take(),
  });
}

/** The server of bench/bare-server.ts: its route's URL, and its pid (its CPU is measured). */
export interface BareServer {
  url: string;
  pid: number | undefined;
}

/** The bare route of bench/bare-server.ts: validation, hash and one GET of one cached input. */
export function bareRoute(b: Bench, bare: BareServer, durationS: number): Promise<Run> {
  const body = JSON.stringify({ features: HIT_ROW });
  // The bare server's CPU takes the API's column (it is the server answering); no worker.
  const measured = { ...b, pids: { api: bare.pid } };
  return measuredLoad(measured, {
    url: bare.url,
    method: 'POST',
    connections: 64,
    durationS,
    body,
  });
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

/** Server-Timing medians of sequential hits and misses (what one request spends where). */
export async function breakdowns(
  b: Bench,
  apiUrl: string,
  n: number,
): Promise<{ hit: Breakdown; miss: Breakdown }> {
  const hitBody = JSON.stringify({ features: HIT_ROW });
  const first = b.rows.take(n);
  return {
    hit: await breakdown(predictUrl(apiUrl), n, () => hitBody),
    miss: await breakdown(predictUrl(apiUrl), n, (i) =>
      JSON.stringify({ features: uniqueRow(first + i, 30) }),
    ),
  };
}

/** Outcome of the NDJSON batch scenario. */
export interface BatchResult {
  rows: number;
  rowsPerSec: number;
  seconds: number;
  resultLines: number;
  /** Redis work per row. */
  redis: RedisCost;
}

/** An NDJSON batch of `rows` rows: upload, run, read every result line. */
export async function batchEndToEnd(
  b: Bench,
  apiUrl: string,
  ndjson: string,
  rows: number,
): Promise<BatchResult> {
  const before = await redisSnapshot(b.admin);
  const started = performance.now();
  const res = await fetch(`${apiUrl}/v1/batches?model=breast-cancer`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: ndjson,
  });
  if (res.status !== 202)
    throw new Error(`batch upload answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const results = await fetch(`${apiUrl}/v1/batches/${id}/results`);
  const text = await results.text();
  const seconds = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const cost = costBetween(before, await redisSnapshot(b.admin));
  const resultLines = text.split('\n').filter((l) => l.length > 0).length;
  if (resultLines !== rows) throw new Error(`batch gave ${resultLines} result lines for ${rows}`);
  return { rows, rowsPerSec: rows / seconds, seconds, resultLines, redis: perUnit(cost, rows) };
}
