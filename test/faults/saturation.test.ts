import type { ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import { BATCH_QUEUE, PREDICT_QUEUE } from '../../src/shared/keys.js';
import { eventually, uniquePrefix } from '../helpers/env.js';
import { loadLoops, sample, type Sample } from '../helpers/load.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';
import { parseExposition, valueOf } from '../helpers/prometheus.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import {
  finishedJobIds,
  jobsOf,
  pinAndNice,
  pinOthers,
  schedTimes,
  startBurner,
  stopBurners,
} from '../helpers/worker-faults.js';

/** How long the CPU stays saturated; SATURATION_MINUTES=10 for the long run (CI: 45 s). */
const MINUTES = Number(process.env.SATURATION_MINUTES ?? 0.75);
const DURATION_MS = Math.round(MINUTES * 60_000);
/** Busy loops pinned to the worker's CPU, at the worker's nice value. */
const BURNERS = Number(process.env.SATURATION_BURNERS ?? 2);
/** Nice value of the worker and the busy loops alike (equal, so they share the CPU evenly). */
const NICE = Number(process.env.SATURATION_NICE ?? 0);
/** Rows per batch chunk: the most allowed, so that a chunk outlives the lock (6 s) on a starved CPU. */
const CHUNK_ROWS = 100_000;
const BATCH_ROWS = 2 * CHUNK_ROWS;
const DEFAULTS = loadConfig({});

/** A breast-cancer row of small integers (exact in float32), distinct for every n < 10⁹. */
const intRow = (n: number) => [
  n % 1000,
  Math.floor(n / 1000) % 1000,
  Math.floor(n / 1_000_000),
  ...Array.from({ length: 27 }, (_, i) => i + 1),
];

/** Every event of both queues, read live (the event streams themselves are trimmed). */
class EventTally {
  readonly started = new Map<string, number>();
  readonly activeAt = new Map<string, number>();
  readonly stalled: string[] = [];
  readonly failed: string[] = [];
  readonly activeMs: number[] = [];
  private readonly readers: QueueEvents[] = [];

  constructor(url: string, prefix: string) {
    for (const queue of [PREDICT_QUEUE, BATCH_QUEUE]) {
      const events = new QueueEvents(queue, { connection: { url }, prefix });
      events.on('error', () => undefined);
      events.on('active', ({ jobId }) => {
        const key = `${queue}/${jobId}`;
        this.started.set(key, (this.started.get(key) ?? 0) + 1);
        this.activeAt.set(key, Date.now());
      });
      events.on('completed', ({ jobId }) => {
        const at = this.activeAt.get(`${queue}/${jobId}`);
        if (at !== undefined) this.activeMs.push(Date.now() - at);
      });
      events.on('stalled', ({ jobId }) => this.stalled.push(`${queue}/${jobId}`));
      events.on('failed', ({ jobId }) => this.failed.push(`${queue}/${jobId}`));
      this.readers.push(events);
    }
  }

  ready(): Promise<unknown> {
    return Promise.all(this.readers.map((r) => r.waitUntilReady()));
  }

  close(): Promise<unknown> {
    return Promise.all(this.readers.map((r) => r.close()));
  }

  /** Jobs that became active more than once. */
  repeated(): string[] {
    return [...this.started].filter(([, n]) => n > 1).map(([k]) => k);
  }
}

describe('a worker whose CPU is saturated for a long time runs no job twice', () => {
  let redis: RedisServer;
  let client: Redis;
  let api: ApiProcess;
  let worker: InferqProcess;
  let tally: EventTally;
  let metricsPort = 0;
  const burners: ChildProcess[] = [];
  let env: Record<string, string>;
  const cpu = cpus().length - 1;

  beforeAll(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.url);
    metricsPort = await freePort();
    // Lock and stalled-check settings keep their defaults: this is what they must survive.
    env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: uniquePrefix('saturated'),
      MODEL_DIR: 'models',
      BATCH_CHUNK_ROWS: String(CHUNK_ROWS),
    };
    tally = new EventTally(redis.url, env.QUEUE_PREFIX ?? '');
    await tally.ready();
    api = await startApiProcess(env);
    worker = await startWorkerProcess({
      ...env,
      WORKER_NAME: 'saturated',
      WORKER_METRICS_PORT: String(metricsPort),
    });
    // The worker and the busy loops share one CPU at the same nice value, so each gets an equal
    // share of it (less when other processes run there too).
    pinAndNice(worker.child.pid ?? 0, cpu, NICE);
    for (let i = 0; i < BURNERS; i++) burners.push(startBurner(cpu, NICE));
    // Redis, the API and this test stay off that CPU: the worker competes with the busy loops,
    // not with the load that drives it.
    for (const pid of [redis.child.pid, api.child.pid, process.pid]) pinOthers(pid ?? 0, cpu);
  }, 60_000);

  afterAll(async () => {
    await stopBurners(burners);
    await stopAll([api, worker]);
    await tally?.close();
    client?.disconnect();
    await redis?.dispose();
  });

  async function lagMaxS(): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).catch(() => undefined);
    if (!res || res.status !== 200) return NaN;
    return valueOf(parseExposition(await res.text()), 'nodejs_eventloop_lag_max_seconds');
  }

  async function waiting(): Promise<number> {
    const p = env.QUEUE_PREFIX ?? '';
    const counts = await Promise.all([
      client.llen(`${p}:${PREDICT_QUEUE}:wait`),
      client.llen(`${p}:${PREDICT_QUEUE}:active`),
      client.llen(`${p}:${BATCH_QUEUE}:wait`),
      client.llen(`${p}:${BATCH_QUEUE}:active`),
      client.zcard(`${p}:${BATCH_QUEUE}:prioritized`),
    ]);
    return counts.reduce((a, b) => a + b, 0);
  }

  /** One batch after another, each waited for; returns how each ended. */
  function batchLoop(offset: number) {
    let n = 0;
    return loadLoops(
      1,
      async (): Promise<Sample> => {
        const first = offset + n++ * BATCH_ROWS;
        const body = Array.from({ length: BATCH_ROWS }, (_, i) =>
          JSON.stringify({ features: intRow(first + i) }),
        ).join('\n');
        const startedAt = Date.now();
        const posted = await fetch(`${api.url}/v1/batches?model=breast-cancer`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson' },
          body,
        });
        const { id } = (await posted.json()) as { id: string };
        let view = { status: 'queued', failed: 0 };
        while (view.status !== 'completed' && view.status !== 'cancelled') {
          const res = await fetch(`${api.url}/v1/batches/${id}?wait=30`);
          view = (await res.json()) as typeof view;
        }
        const ok = posted.status === 202 && view.status === 'completed' && view.failed === 0;
        return { startedAt, endedAt: Date.now(), status: ok ? 200 : 500, retryAfter: null, id };
      },
      500,
    );
  }

  it(
    `runs every online job and batch chunk once while pinned beside ${BURNERS} busy loops`,
    async () => {
      const pid = worker.child.pid ?? 0;
      const schedBefore = schedTimes(pid);
      const url = `${api.url}/v1/models/breast-cancer/predict`;
      const online = loadLoops(6, (n) =>
        sample(
          url,
          { instances: Array.from({ length: 100 }, (_, i) => intRow(100 * n + i)) },
          { prefer: 'wait=120' },
          150_000,
        ),
      );
      // Async jobs keep a backlog, so the worker's slots stay full and jobs wait in them: these
      // are prioritized, so they take BullMQ's own path (the fast lane keeps its backlog in its
      // list, and takes no more jobs than it has slots).
      const jobs = loadLoops(
        2,
        async (n) => {
          if ((await waiting()) > 300) {
            // Enough queued: skip (status 1), so that the queue drains in bounded time at the end.
            await new Promise((r) => setTimeout(r, 200));
            return { startedAt: Date.now(), endedAt: Date.now(), status: 1, retryAfter: null };
          }
          return sample(`${api.url}/v1/jobs`, {
            model: 'breast-cancer',
            priority: 5,
            instances: Array.from({ length: 1000 }, (_, i) => intRow(300_000_000 + 1000 * n + i)),
          });
        },
        20,
      );
      const batches = batchLoop(600_000_000);
      let lagS = 0;
      const deadline = Date.now() + DURATION_MS;
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(5000, deadline - Date.now())));
        lagS = Math.max(lagS, (await lagMaxS()) || 0);
        expect(worker.child.exitCode).toBeNull();
      }
      const sched = schedTimes(pid);
      const [onlineSamples, jobSamples, batchSamples] = await Promise.all([
        online.stop(),
        jobs.stop(),
        batches.stop(),
      ]);
      await eventually(async () => (await waiting()) === 0, 300_000, 500);
      await new Promise((r) => setTimeout(r, 500));

      const { completed, failed } = await finishedJobIds(
        client,
        env.QUEUE_PREFIX ?? '',
        PREDICT_QUEUE,
      );
      const runS = (sched.runNs - schedBefore.runNs) / 1e9;
      const waitS = (sched.waitNs - schedBefore.waitNs) / 1e9;
      // What the worker warned about (the last 64 KiB of its log), to tell why a job was lost.
      const warnings = new Map<string, number>();
      for (const line of worker.output().split('\n')) {
        const msg = /"level":(?:40|50).*"msg":"([^"]*)"/.exec(line)?.[1];
        if (msg) warnings.set(msg, (warnings.get(msg) ?? 0) + 1);
      }
      const audit = await jobsOf(client, env.QUEUE_PREFIX ?? '', PREDICT_QUEUE, completed);
      // Jobs of the fast lane send no events: how long they were active is read from their hash.
      const activeMs = [
        ...tally.activeMs,
        ...audit
          .filter((j) => !tally.started.has(`${PREDICT_QUEUE}/${j.id}`))
          .map((j) => (j.finishedOn ?? 0) - (j.processedOn ?? Infinity))
          .filter((ms) => ms >= 0),
      ];
      const longest = Math.max(...activeMs);
      const overLock = activeMs.filter((ms) => ms > DEFAULTS.WORKER_LOCK_MS).length;
      console.log(
        `saturation ${MINUTES} min, worker pinned to CPU ${cpu} beside ${BURNERS} busy loops (nice ${NICE} all): ` +
          `worker ran ${runS.toFixed(1)} s and waited ${waitS.toFixed(1)} s for the CPU ` +
          `(${((100 * runS) / (DURATION_MS / 1000)).toFixed(0)}% of one core); ` +
          `max event-loop delay ${(lagS * 1000).toFixed(0)} ms; ` +
          `${completed.length} online jobs (${onlineSamples.length} predict requests, ${jobSamples.filter((s) => s.status === 202).length} async submissions), ` +
          `${batchSamples.length} batches of ${BATCH_ROWS} rows; longest active job ${longest} ms, ` +
          `${overLock} active longer than the ${DEFAULTS.WORKER_LOCK_MS} ms lock; ` +
          `${tally.stalled.length} stalled, ${tally.repeated().length} run twice, ${tally.failed.length} failed; ` +
          `worker warnings ${JSON.stringify(Object.fromEntries(warnings))}`,
      );
      expect(tally.stalled).toEqual([]);
      expect(tally.repeated()).toEqual([]);
      expect(tally.failed).toEqual([]);
      expect(failed).toEqual([]);
      expect(audit.filter((j) => j.attemptsStarted !== 1 || j.stalledCount !== 0)).toEqual([]);
      expect(worker.output()).not.toMatch(/could not renew lock|Missing lock|stalled/i);
      expect(onlineSamples.filter((s) => s.status !== 200)).toEqual([]);
      expect(jobSamples.filter((s) => s.status !== 202 && s.status !== 1)).toEqual([]);
      expect(batchSamples.filter((s) => s.status !== 200)).toEqual([]);

      // The CPU was contended: the worker waited for it at least half as long as it ran.
      expect(waitS).toBeGreaterThan(runS / 2);
      // Jobs outlived their first lock, so they stayed theirs only through renewals.
      expect(overLock).toBeGreaterThan(0);
    },
    DURATION_MS + 420_000,
  );
});
