// Scenarios that reshape the deployment: more API replicas, a slow network to Redis, a fresh
// API holding thousands of long-polls. Each starts and stops its own processes by pid.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { DelayProxy } from './delay-proxy.js';
import {
  cpuSeconds,
  inferqEnv,
  memoryMb,
  sleep,
  startApi,
  startWorker,
  waitIdle,
  warmUp,
} from './deployment.js';
import { measuredLoad, merge, type Bench, type Measured } from './measure.js';
import { median } from './stats.js';

const missLoad = (b: Bench, apiUrl: string, connections: number, durationS: number) =>
  measuredLoad(b, {
    url: `${apiUrl}/v1/models/breast-cancer/predict`,
    method: 'POST',
    connections,
    durationS,
    uniqueWidth: 30,
    seed: b.rows.take(),
  });

/** Redis output per lone miss with one API replica and with three, the load on one of them. */
export interface ReplicasResult {
  one: Measured;
  three: Measured;
  /** Output bytes per completion (= per prediction at 1 connection), three replicas over one. */
  ratio: number;
}

/**
 * Lone cache misses (1 connection: one job, one completion per prediction, whatever the
 * gathering) on one API replica, first alone, then with two more replicas of the same deployment
 * idle beside it: what the idle ones cost Redis per completion shows in its output bytes.
 */
export async function replicas(
  b: Bench,
  apiUrl: string,
  env: Record<string, string>,
  durationS: number,
): Promise<ReplicasResult> {
  const one = merge(1, [await missLoad(b, apiUrl, 1, durationS)]);
  const extra = [await startApi(b.procs, env), await startApi(b.procs, env)];
  try {
    await sleep(1000);
    const three = merge(1, [await missLoad(b, apiUrl, 1, durationS)]);
    return { one, three, ratio: three.redis.outputBytes / one.redis.outputBytes };
  } finally {
    for (const api of extra) await b.procs.stop(api.child);
  }
}

/** Lone-miss latency with every inferq process reaching Redis through a delaying proxy. */
export interface RoundTripsResult {
  /** One entry per run: the delay asked, the mean delay chunks really waited, the miss p50. */
  runs: Array<{ delayMs: number; effectiveDelayMs: number; p50: number; ok: number }>;
  p50D0: number;
  p50D2: number;
  /** Mean delay a chunk really waited at D = 2 ms (timers fire late). */
  effectiveDelayMs: number;
  /** (p50(D=2) - p50(D=0)) / (2 x effective delay): sequential round trips of a lone miss. */
  roundTrips: number;
  /** The same divided by the nominal 2 x 2 ms. */
  roundTripsNominal: number;
}

/**
 * A fresh API and worker whose Redis connections all go through a proxy that delays every chunk
 * by D ms each way; lone cache misses at D = 0 and D = 2 ms, alternated `rounds` times. Each
 * sequential round trip on a miss's critical path adds 2 D to its latency.
 */
export async function roundTrips(
  b: Bench,
  redisPort: number,
  rounds: number,
  durationS: number,
): Promise<RoundTripsResult> {
  const proxy = new DelayProxy(redisPort);
  const port = await proxy.listen();
  const env = inferqEnv(`redis://127.0.0.1:${port}`, '{benchrtt}');
  const worker = startWorker(b.procs, env);
  try {
    const api = await startApi(b.procs, env);
    try {
      await warmUp(api.url, b.rows);
      const runs: RoundTripsResult['runs'] = [];
      for (let r = 0; r < rounds; r++) {
        for (const delayMs of [0, 2]) {
          proxy.delayMs = delayMs;
          await sleep(300);
          proxy.resetStats();
          const m = merge(1, [await missLoad(b, api.url, 1, durationS)]);
          runs.push({ delayMs, effectiveDelayMs: proxy.stats().meanDelayMs, p50: m.p50, ok: m.ok });
        }
      }
      const at = (d: number) => runs.filter((x) => x.delayMs === d);
      const p50D0 = median(at(0).map((x) => x.p50));
      const p50D2 = median(at(2).map((x) => x.p50));
      const eff = at(2).reduce((s, x) => s + x.effectiveDelayMs, 0) / Math.max(at(2).length, 1);
      return {
        runs,
        p50D0,
        p50D2,
        effectiveDelayMs: eff,
        roundTrips: (p50D2 - p50D0) / (2 * eff),
        roundTripsNominal: (p50D2 - p50D0) / (2 * 2),
      };
    } finally {
      await b.procs.stop(api.child);
    }
  } finally {
    await b.procs.stop(worker);
    await proxy.close();
  }
}

/** Outcome of the long-poll scenario. */
export interface WaitersResult {
  waiters: number;
  answered: number;
  completed: number;
  p50DelayMs: number;
  p99DelayMs: number;
  maxDelayMs: number;
  /** API resident memory once every long-poll was open, before any job ran, MB. */
  apiRssOpenMb: number;
  /** Peak resident memory of the API over the whole scenario (VmHWM), MB. */
  apiRssPeakMb: number;
  firstError?: string;
  /** Answers by HTTP status and job status (or socket error). */
  outcomes: Record<string, number>;
  /** Seconds from the last poll sent to the worker's start (the API reading them all). */
  settleS: number;
  /** CPU µs per answered poll from the worker's start to the last answer: API, polling client. */
  apiCpuUsPerAnswer: number;
  clientCpuUsPerAnswer: number;
  /** p99 event-loop delay of the polling client while it waited (stamps answers late by it). */
  clientLagP99Ms: number;
}

const WAITERS_CHILD = fileURLToPath(new URL('./waiters-child.ts', import.meta.url));

/**
 * A fresh API; `n` jobs queued while no worker runs and `n` long-polls open on them from a
 * process of their own; then a worker starts. Every poll must be answered soon after its job.
 */
export async function waiters(
  b: Bench,
  env: Record<string, string>,
  n: number,
): Promise<WaitersResult> {
  const api = await startApi(b.procs, env);
  try {
    const args = JSON.stringify({ apiUrl: api.url, n, seed: b.rows.take(n) });
    const child = b.procs.track(
      spawn(process.execPath, ['--import', 'tsx', WAITERS_CHILD, args], {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    const lines: string[] = [];
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('{"open"')) open();
      else lines.push(line);
    });
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    await Promise.race([opened, closed]);
    // Let the API read every request and register its wait before a job can end.
    const openedAt = performance.now();
    await waitIdle(api.child.pid, 1000, 10_000);
    const settleS = (performance.now() - openedAt) / 1000;
    const apiRssOpenMb = (await memoryMb(api.child.pid)).rss;
    const apiCpuAtStart = await cpuSeconds(api.child.pid!);
    const worker = startWorker(b.procs, env);
    try {
      await closed;
      const apiCpuS = (await cpuSeconds(api.child.pid!)) - apiCpuAtStart;
      const result = JSON.parse(lines.pop() ?? '{}') as Partial<WaitersResult> & {
        error?: string;
        clientCpuS?: number;
      };
      if (result.error) throw new Error(`waiters: ${result.error}`);
      const perAnswer = (s: number) => (s * 1e6) / Math.max(result.answered ?? 0, 1);
      return {
        waiters: n,
        answered: result.answered ?? 0,
        completed: result.completed ?? 0,
        p50DelayMs: result.p50DelayMs ?? NaN,
        p99DelayMs: result.p99DelayMs ?? NaN,
        maxDelayMs: result.maxDelayMs ?? NaN,
        apiRssOpenMb,
        apiRssPeakMb: (await memoryMb(api.child.pid)).peak,
        firstError: result.firstError,
        outcomes: result.outcomes ?? {},
        settleS,
        apiCpuUsPerAnswer: perAnswer(apiCpuS),
        clientCpuUsPerAnswer: perAnswer(result.clientCpuS ?? NaN),
        clientLagP99Ms: result.clientLagP99Ms ?? NaN,
      };
    } finally {
      await b.procs.stop(worker);
    }
  } finally {
    await b.procs.stop(api.child);
  }
}
