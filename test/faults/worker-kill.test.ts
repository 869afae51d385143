import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchChunkJobData } from '../../src/shared/batches.js';
import { BATCH_QUEUE, createKeys, PREDICT_QUEUE } from '../../src/shared/keys.js';
import { eventually, uniquePrefix } from '../helpers/env.js';
import { loadLoops, sample } from '../helpers/load.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import {
  activeJobsOf,
  heldOnlineJobs,
  jobData,
  jobsOf,
  type HeldJob,
} from '../helpers/worker-faults.js';

const ROWS = 10_000;

/** A breast-cancer row unique to index `n`. */
const row = (n: number) => Array.from({ length: 30 }, (_, i) => 3 + i + n / 16_384);

interface ResultLine {
  index: number;
  id?: string;
  status: 'completed' | 'failed';
  probabilities?: number[];
  error?: { code: string };
}

describe('kill -9 of a worker in the middle of a 10,000-row batch', () => {
  let redis: RedisServer;
  let client: Redis;
  let api: ApiProcess;
  const workers: InferqProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.url);
    env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: uniquePrefix('kill'),
      MODEL_DIR: 'models',
      BATCH_CHUNK_ROWS: '250',
      MAX_BATCH_SIZE: '16',
      // WORKER_LOCK_MS and WORKER_STALLED_INTERVAL_MS keep their defaults.
      WORKER_METRICS_PORT: '0',
    };
    api = await startApiProcess(env);
  }, 60_000);

  afterAll(async () => {
    await stopAll([api, ...workers]);
    client?.disconnect();
    await redis?.dispose();
  });

  it('recovers the dead worker’s chunks on another worker: every row once, none twice', async () => {
    const ndjson = Array.from({ length: ROWS }, (_, i) =>
      JSON.stringify({ id: `row-${i}`, features: row(i) }),
    ).join('\n');
    const posted = await fetch(`${api.url}/v1/batches?model=breast-cancer`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: ndjson,
    });
    expect(posted.status).toBe(202);
    const { id, total } = (await posted.json()) as { id: string; total: number };
    expect(total).toBe(ROWS);
    const batchKey = `${env.QUEUE_PREFIX}:batch:${id}`;
    const activeKey = `${env.QUEUE_PREFIX}:${BATCH_QUEUE}:active`;

    const doomed = await startWorkerProcess({ ...env, WORKER_NAME: 'doomed' });
    workers.push(doomed);
    await eventually(async () => Number(await client.hget(batchKey, 'completed')) > 0, 30_000, 5);
    await doomed.kill9();
    const killedAt = Date.now();
    const doneAtKill = Number(await client.hget(batchKey, 'completed'));
    const activeAtKill = await client.llen(activeKey);
    expect(doneAtKill).toBeLessThan(ROWS);
    expect(activeAtKill).toBeGreaterThan(0);

    workers.push(await startWorkerProcess({ ...env, WORKER_NAME: 'rescuer' }));
    const res = await fetch(`${api.url}/v1/batches/${id}?wait=60`);
    const view = (await res.json()) as { status: string; completed: number; failed: number };
    const recoveryMs = Date.now() - killedAt;
    expect(view).toMatchObject({ status: 'completed', completed: ROWS, failed: 0 });

    const text = await (await fetch(`${api.url}/v1/batches/${id}/results`)).text();
    const lines = text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as ResultLine);
    expect(lines).toHaveLength(ROWS);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: ROWS }, (_, i) => i));
    expect(lines.every((l, i) => l.id === `row-${i}` && l.status === 'completed')).toBe(true);
    expect(lines.every((l) => l.probabilities?.length === 2)).toBe(true);

    // The recovery went through BullMQ's stalled-job check, not a graceful hand-over.
    // With few chunks held at once the batch may finish first (the dead worker's chunks had
    // counted their rows); their stalled jobs are still taken back once the lock runs out.
    let stalled = 0;
    await eventually(async () => {
      const events = await client.xrange(`${env.QUEUE_PREFIX}:${BATCH_QUEUE}:events`, '-', '+');
      stalled = events.filter(([, f]) => f[1] === 'stalled').length;
      return stalled > 0;
    }, 30_000);
    expect(stalled).toBeGreaterThan(0);
    console.log(
      `worker kill -9: ${doneAtKill}/${ROWS} rows done and ${activeAtKill} chunk jobs active at the kill; ` +
        `${stalled} chunks recovered as stalled; batch complete ${recoveryMs} ms after the kill ` +
        `(default lock settings, new worker started at once)`,
    );
  }, 120_000);
});

/** Rounds of the recovery test (each kills one worker); KILL_ROUNDS=5 for more figures. */
const KILL_ROUNDS = Number(process.env.KILL_ROUNDS ?? 2);
/** The requirement: a dead worker's work is finished by another within this, with the defaults. */
const RECOVERY_LIMIT_MS = 10_000;
const RECOVERY_ROWS = 30_000;

describe('kill -9 of one of two workers holding online jobs and batch chunks (default settings)', () => {
  let redis: RedisServer;
  let client: Redis;
  let api: ApiProcess;
  let survivor: InferqProcess | undefined;
  const doomed: InferqProcess[] = [];
  let env: Record<string, string>;

  beforeAll(async () => {
    redis = await startRedisServer();
    client = new Redis(redis.url);
    // Nothing about locks or stalled checks is set: this measures the defaults.
    env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: uniquePrefix('kill2'),
      MODEL_DIR: 'models',
      WORKER_METRICS_PORT: '0',
    };
    api = await startApiProcess(env);
    survivor = await startWorkerProcess({ ...env, WORKER_NAME: 'survivor' });
  }, 60_000);

  afterAll(async () => {
    await stopAll([api, survivor, ...doomed]);
    client?.disconnect();
    await redis?.dispose();
  });

  const prefix = () => env.QUEUE_PREFIX ?? '';

  async function postBatch(round: number): Promise<string> {
    const ndjson = Array.from({ length: RECOVERY_ROWS }, (_, i) =>
      JSON.stringify({ features: row(round * 1_000_000 + i) }),
    ).join('\n');
    const res = await fetch(`${api.url}/v1/batches?model=breast-cancer`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: ndjson,
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }

  /**
   * Freezes the worker (SIGSTOP) at a moment it holds both online jobs and batch chunks, then
   * kills it (SIGKILL). Returns when it froze (it renewed no lock after that) and what it held.
   */
  async function freezeAndKill(worker: InferqProcess, name: string) {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      // Online jobs pass through a worker in milliseconds: only the chunks are looked for
      // before the freeze; what it held is read once it can no longer change.
      const chunks = await activeJobsOf(client, prefix(), BATCH_QUEUE, name);
      if (chunks.length === 0) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const frozenAt = Date.now();
      worker.child.kill('SIGSTOP');
      // Commands it had already sent are run by Redis: let them land before reading.
      await new Promise((r) => setTimeout(r, 100));
      const [heldChunks, held] = await Promise.all([
        activeJobsOf(client, prefix(), BATCH_QUEUE, name),
        heldOnlineJobs(client, prefix(), PREDICT_QUEUE, name),
      ]);
      const heldOnline = [...held.active, ...held.transit];
      if (heldChunks.length > 0 && heldOnline.length > 0) {
        await worker.kill9();
        return { frozenAt, online: heldOnline, claimed: held.active, chunks: heldChunks };
      }
      worker.child.kill('SIGCONT');
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`${name} never held online jobs and chunks at once`);
  }

  async function waitFinished(ids: string[]): Promise<HeldJob[]> {
    let jobs: HeldJob[] = [];
    await eventually(
      async () => {
        jobs = await jobsOf(client, prefix(), PREDICT_QUEUE, ids);
        return jobs.every((j) => j.finishedOn !== undefined);
      },
      30_000,
      25,
    );
    return jobs;
  }

  /**
   * Milliseconds from `since` until each chunk was done again by another worker: its job gone
   * (a finished chunk's job is removed at once) and its result key present, polled every 20 ms.
   * The result key alone is not enough: the dead worker may have written it just before the
   * freeze, before it could finish the job.
   */
  async function waitChunksDone(
    ids: string[],
    chunks: (BatchChunkJobData | undefined)[],
    since: number,
  ): Promise<number[]> {
    const keys = createKeys(prefix());
    const names = chunks.map((c) => (c ? keys.batchOutput(c.batchId, c.chunk) : '?'));
    const jobKeys = ids.map((id) => `${prefix()}:${BATCH_QUEUE}:${id}`);
    const doneAt = names.map(() => 0);
    await eventually(
      async () => {
        const [results, jobs] = await Promise.all([
          Promise.all(names.map((n) => client.exists(n))),
          Promise.all(jobKeys.map((k) => client.exists(k))),
        ]);
        results.forEach((r, i) => {
          if (r === 1 && jobs[i] === 0 && doneAt[i] === 0) doneAt[i] = Date.now();
        });
        return doneAt.every((t) => t > 0);
      },
      30_000,
      20,
    );
    return doneAt.map((t) => t - since);
  }

  /** Starts a worker, loads it with online requests and a batch, kills it; returns the figures. */
  async function killRound(round: number): Promise<string> {
    const name = `doomed-${round}`;
    const worker = await startWorkerProcess({ ...env, WORKER_NAME: name });
    doomed.push(worker);
    const url = `${api.url}/v1/models/breast-cancer/predict`;
    const base = round * 1_000_000 + 500_000;
    // 20 instances a request, so that online jobs stay active long enough to be caught.
    const load = loadLoops(16, (n) =>
      sample(
        url,
        { instances: Array.from({ length: 20 }, (_, i) => row(base + 20 * n + i)) },
        { prefer: 'wait=30' },
        40_000,
      ),
    );
    // Chunks run while the upload still arrives: watch for the moment from the first byte on.
    const posted = postBatch(round);
    const { frozenAt, online, claimed, chunks } = await freezeAndKill(worker, name);
    const batchId = await posted;
    const chunkData = await jobData<BatchChunkJobData>(client, prefix(), BATCH_QUEUE, chunks);
    const [onlineJobs, chunkMs] = await Promise.all([
      waitFinished(online),
      waitChunksDone(chunks, chunkData, frozenAt),
    ]);
    const samples = await load.stop();
    for (const job of onlineJobs) {
      // A claimed job is taken back by BullMQ's stalled check and run once more; one still in
      // the dead worker's fast-lane transit list is given to `wait` once its alive key lapses
      // (it had not started as far as BullMQ counts). Either way the survivor runs it.
      expect(job).toMatchObject(
        claimed.includes(job.id)
          ? { processedBy: 'survivor', stalledCount: 1, attemptsStarted: 2 }
          : { processedBy: 'survivor', stalledCount: 0, attemptsStarted: 1 },
      );
      expect((job.finishedOn ?? Infinity) - frozenAt).toBeLessThan(RECOVERY_LIMIT_MS);
    }
    // A finished chunk's job is removed at once; its result key and 'stalled' event remain.
    for (const ms of chunkMs) expect(ms).toBeLessThan(RECOVERY_LIMIT_MS);
    const events = await client.xrange(`${prefix()}:${BATCH_QUEUE}:events`, '-', '+');
    const stalled = new Set(events.filter(([, f]) => f[1] === 'stalled').map(([, f]) => f[3]));
    expect(chunks.filter((id) => !stalled.has(id))).toEqual([]);
    // Every request was answered with its prediction, those of the dead worker's jobs included.
    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    const view = (await (await fetch(`${api.url}/v1/batches/${batchId}?wait=60`)).json()) as {
      status: string;
      completed: number;
      failed: number;
    };
    expect(view).toMatchObject({ status: 'completed', completed: RECOVERY_ROWS, failed: 0 });
    const onlineMs = onlineJobs.map((j) => (j.finishedOn ?? 0) - frozenAt);
    const slowest = Math.max(...samples.map((s) => s.endedAt - s.startedAt));
    return (
      `round ${round}: ${online.length} online jobs (${claimed.length} claimed) recovered in ${Math.min(...onlineMs)}–${Math.max(...onlineMs)} ms, ` +
      `${chunks.length} batch chunks in ${Math.min(...chunkMs)}–${Math.max(...chunkMs)} ms; ` +
      `${samples.length} predict requests all 200, slowest ${slowest} ms`
    );
  }

  it(
    'has the other worker finish every job and chunk the dead one held within 10 s',
    async () => {
      for (let round = 1; round <= KILL_ROUNDS; round++) {
        console.log(
          `worker kill -9, default settings, times from the freeze: ${await killRound(round)}`,
        );
      }
    },
    60_000 + KILL_ROUNDS * 60_000,
  );
});
