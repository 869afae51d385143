import type { Redis } from 'ioredis';
import { runLoad, type LoadOptions, type LoadResult } from './load.js';
import type { Processes } from './procs.js';
import {
  addCosts,
  costBetween,
  perUnit,
  redisSnapshot,
  type RedisCost,
  type RedisSnapshot,
} from './redis-info.js';
import type { RowNumbers } from './rows.js';
import { percentile, type Breakdown } from './stats.js';

/** What every scenario needs: the bench's own Redis, its processes and its input numbering. */
export interface Bench {
  redisUrl: string;
  /** A connection of the bench's own, straight to Redis (INFO only). */
  admin: Redis;
  procs: Processes;
  rows: RowNumbers;
}

/** One load run with what Redis did during it (the whole cost, not yet per prediction). */
export interface Run {
  load: LoadResult;
  cost: RedisCost;
}

/** Several runs of one scenario merged: latencies over every 2xx answer, Redis per answer. */
export interface Measured {
  connections: number;
  runs: number;
  /** 2xx answers per second over the runs. */
  reqPerSec: number;
  ok: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** non-2xx answers, socket errors and timeouts. */
  errors: number;
  /** Redis work per 2xx answer (one prediction each). */
  redis: RedisCost;
  /** Medians of the service's Server-Timing over sequential requests, when measured. */
  breakdown?: Breakdown;
}

// Trailing work of the last answers (cache writes, job bookkeeping) still belongs to the run.
export const SETTLE_MS = 250;

/** Runs one load from its own process with Redis counters read right around it. */
export async function measuredLoad(b: Bench, options: LoadOptions): Promise<Run> {
  let before: RedisSnapshot | undefined;
  const load = await runLoad(
    { samples: true, ...options },
    {
      track: (child) => b.procs.track(child),
      onReady: async () => {
        before = await redisSnapshot(b.admin);
      },
    },
  );
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const after = await redisSnapshot(b.admin);
  if (!before) throw new Error('load ended before it started');
  return { load, cost: costBetween(before, after) };
}

/** Merges runs of one scenario. */
export function merge(connections: number, runs: Run[]): Measured {
  const samples = runs.flatMap((r) => r.load.samples ?? []);
  const ok = runs.reduce((s, r) => s + r.load.ok, 0);
  const seconds = runs.reduce((s, r) => s + r.load.durationS, 0);
  samples.sort((a, b) => a - b);
  const at = (p: number) => percentile(samples, p);
  return {
    connections,
    runs: runs.length,
    reqPerSec: ok / Math.max(seconds, 1e-9),
    ok,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: at(100),
    errors: runs.reduce((s, r) => s + r.load.non2xx + r.load.errors + r.load.timeouts, 0),
    redis: perUnit(addCosts(runs.map((r) => r.cost)), ok),
  };
}
