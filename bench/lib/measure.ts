import type { Redis } from 'ioredis';
import { runLoad, type LoadOptions, type LoadResult } from './load.js';
import { cpuSeconds, machineCpu } from './deployment.js';
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
  /** The API and worker processes under load, whose CPU each run measures (`Run.cpu`). */
  pids?: { api?: number; worker?: number };
}

/** CPU seconds used during a run: by the API, the worker, the load generator, the machine. */
export interface RunCpu {
  api: number;
  worker: number;
  load: number;
  /** Every process of the machine, summed over its cores. */
  machine: number;
  /** Wall time times cores: what the machine could have used. */
  capacity: number;
}

/** One load run with what Redis did during it (the whole cost, not yet per prediction). */
export interface Run {
  load: LoadResult;
  cost: RedisCost;
  cpu: RunCpu;
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
  /**
   * CPU µs per 2xx answer of the API and worker (NaN where not measured: the bare route has
   * neither) and of the load generator, and the share of the machine's CPU left idle.
   */
  cpu: { apiUs: number; workerUs: number; loadUs: number; idleShare: number };
}

// Trailing work of the last answers (cache writes, job bookkeeping) still belongs to the run.
export const SETTLE_MS = 250;

/** Runs one load from its own process with Redis counters read right around it. */
export async function measuredLoad(b: Bench, options: LoadOptions): Promise<Run> {
  let before: RedisSnapshot | undefined;
  let cpuBefore: Omit<RunCpu, 'load'> | undefined;
  const load = await runLoad(
    { samples: true, ...options },
    {
      track: (child) => b.procs.track(child),
      onReady: async () => {
        cpuBefore = await processCpu(b);
        before = await redisSnapshot(b.admin);
      },
    },
  );
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const after = await redisSnapshot(b.admin);
  const cpuAfter = await processCpu(b);
  if (!before || !cpuBefore) throw new Error('load ended before it started');
  const cpu: RunCpu = {
    api: cpuAfter.api - cpuBefore.api,
    worker: cpuAfter.worker - cpuBefore.worker,
    load: load.cpuS ?? NaN,
    machine: cpuAfter.machine - cpuBefore.machine,
    capacity: cpuAfter.capacity - cpuBefore.capacity,
  };
  return { load, cost: costBetween(before, after), cpu };
}

// CPU seconds so far of the bench's API and worker (NaN when not given) and of the machine.
async function processCpu(b: Bench): Promise<Omit<RunCpu, 'load'>> {
  const of = (pid: number | undefined) => (pid ? cpuSeconds(pid).catch(() => NaN) : NaN);
  const [api, worker, machine] = await Promise.all([
    of(b.pids?.api),
    of(b.pids?.worker),
    machineCpu(),
  ]);
  return { api, worker, machine: machine.busyS, capacity: machine.totalS };
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
    cpu: cpuPerAnswer(runs, ok),
  };
}

function cpuPerAnswer(runs: Run[], ok: number): Measured['cpu'] {
  const sum = (f: (c: RunCpu) => number) => runs.reduce((s, r) => s + f(r.cpu), 0);
  const perAnswer = (seconds: number) => (seconds * 1e6) / Math.max(ok, 1);
  const capacity = sum((c) => c.capacity);
  return {
    apiUs: perAnswer(sum((c) => c.api)),
    workerUs: perAnswer(sum((c) => c.worker)),
    loadUs: perAnswer(sum((c) => c.load)),
    idleShare: capacity > 0 ? 1 - sum((c) => c.machine) / capacity : NaN,
  };
}
