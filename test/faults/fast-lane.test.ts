import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { PREDICT_QUEUE } from '../../src/shared/keys.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, uniquePrefix } from '../helpers/env.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startRespCutProxy, type RespCutProxy } from '../helpers/resp-cut-proxy.js';
import { jobIdsOf } from '../helpers/queue-audit.js';
import { FINISH } from '../../src/shared/fast-lane.js';

// Failure modes of the fast lane (issue 11): real processes, a redis-server of the test's own.

/** A breast-cancer row no other request of this file sends. */
const row = (n: number) => Array.from({ length: 30 }, (_, i) => 2 + i + n / 1024);

interface Prediction {
  id: string;
  predictions?: unknown;
  prediction?: unknown;
}

async function predict(api: ApiProcess, n: number, waitS = 20): Promise<Response> {
  return fetch(`${api.url}/v1/models/breast-cancer/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: `wait=${waitS}` },
    body: JSON.stringify({ features: row(n) }),
  });
}

/** What a describe block of this file runs on: its own redis-server, one API, the workers it adds. */
interface Deployment {
  redis: RedisServer;
  client: Redis;
  api: ApiProcess;
  workers: InferqProcess[];
  env: Record<string, string>;
  /** A key of the prediction queue (shard 0). */
  key: (type: string) => string;
}

/**
 * Waits until the API sends jobs to the fast lane: it reads every second whether a worker
 * consumes the lane (with none, jobs go through BullMQ's own queue).
 */
async function laneOpen(d: Deployment): Promise<void> {
  await eventually(async () => (await d.client.scard(d.key('fast-consumers'))) > 0, 10_000);
  await new Promise((r) => setTimeout(r, 1200));
}

/**
 * A worker that registered on the lane, then was killed (kill -9): the lane stays open (nobody
 * sweeps its registration) and jobs wait on it until another worker starts.
 */
async function deadConsumer(d: Deployment, name: string): Promise<void> {
  const gone = await startWorkerProcess({ ...d.env, WORKER_NAME: name });
  d.workers.push(gone);
  await laneOpen(d);
  await gone.kill9();
}

/** Starts a Deployment before the describe's tests and stops all of it (by pid) after them. */
function deployment(label: string, env: Record<string, string> = {}, redisArgs: string[] = []) {
  const d = { workers: [] as InferqProcess[] } as Deployment;
  beforeAll(async () => {
    d.redis = await startRedisServer(redisArgs.length ? { args: redisArgs } : {});
    d.client = new Redis(d.redis.url, { maxRetriesPerRequest: null });
    d.client.on('error', () => undefined);
    d.env = {
      REDIS_URL: d.redis.url,
      QUEUE_PREFIX: uniquePrefix(label),
      MODEL_DIR: 'models',
      WORKER_METRICS_PORT: '0',
      ...env,
    };
    d.key = (type) => `${d.env.QUEUE_PREFIX ?? ''}:predict:${type}`;
    d.api = await startApiProcess(d.env);
  }, 60_000);
  afterAll(async () => {
    await stopAll([d.api, ...d.workers]);
    d.client?.disconnect();
    await d.redis?.dispose();
  });
  return d;
}

describe('a worker killed after inference, before the writes that answer and record the job', () => {
  // The dead worker's jobs are taken back once its alive key lapses.
  const d = deployment('fastcut', { WORKER_LOCK_MS: '2000' });
  let proxy: RespCutProxy;
  beforeAll(async () => {
    proxy = await startRespCutProxy(d.redis.port);
  });
  afterAll(async () => {
    await stopAll(d.workers);
    await proxy?.close();
  });

  it('has another worker run it: the waiting request is answered, the job recorded once', async () => {
    const { api, client, env, workers } = d;
    const prefix = env.QUEUE_PREFIX ?? '';
    // Worker A reaches Redis through the proxy, which passes nothing on from the first of the
    // commands that end a job: its cache entry, its reply and the script that records it leave
    // together.
    const doomed = await startWorkerProcess({
      ...env,
      REDIS_URL: proxy.url,
      WORKER_NAME: 'doomed',
    });
    workers.push(doomed);
    await laneOpen(d);
    const cut = proxy.cutAt(
      (name, first) =>
        (name === 'SET' && first.includes(':cache:')) ||
        name === 'PUBLISH' ||
        (name === 'EVALSHA' && first === FINISH.sha) ||
        (name === 'EVAL' && first === FINISH.lua),
    );
    const answer = predict(api, 1, 30);
    await cut;
    await doomed.kill9();
    const transit = await client.keys(`${prefix}:predict:fast-transit:*`);
    expect(transit).toHaveLength(1);
    expect(await client.llen(transit[0] ?? '')).toBe(1);

    const survivor = await startWorkerProcess({ ...env, WORKER_NAME: 'survivor' });
    workers.push(survivor);
    // A's alive key lapses (2 s); a sweep of B gives the job to BullMQ's path, which runs it.
    const res = await answer;
    expect(res.status).toBe(200);
    const body = (await res.json()) as Prediction;
    const [jobId] = await jobIdsOf(client, prefix, [body.id]);
    const jobKey = `${prefix}:predict:${jobId ?? ''}`;
    await eventually(async () => (await client.hget(jobKey, 'finishedOn')) !== null, 20_000);
    expect(await client.hget(jobKey, 'pb')).toBe('survivor');
    expect(await client.hget(jobKey, 'ats')).toBe('1');
    expect(await client.zscore(`${prefix}:predict:completed`, jobId ?? '')).not.toBeNull();
    expect(await client.exists(...transit)).toBe(0);
    expect(await client.smembers(`${prefix}:predict:fast-consumers`)).toHaveLength(1);

    // The job's view gives the answer the client had.
    const view = await fetch(`${api.url}/v1/jobs/${body.id}`);
    expect(view.status).toBe(200);
    const job = (await view.json()) as { status: string; result: unknown };
    expect(job.status).toBe('completed');
    expect(body).toMatchObject(job.result as object);
  }, 60_000);
});

describe('Redis restarted while a request waits on the fast lane', () => {
  const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
  const d = deployment('fastrestart', { WORKER_LOCK_MS: '2000' }, AOF);

  it('answers the waiting request once a worker runs the job kept across the restart', async () => {
    const { api, client, env, redis, key } = d;
    const lane = key('fast');
    // No live worker: the job waits on the lane.
    await deadConsumer(d, 'gone-before-restart');
    const waiting = predict(api, 100, 30);
    await eventually(async () => (await client.llen(lane)) === 1, 10_000);

    await redis.stop('SIGKILL');
    await redis.restart(AOF);
    await eventually(async () => (await client.llen(lane)) === 1, 10_000);
    d.workers.push(await startWorkerProcess({ ...env, WORKER_NAME: 'after-restart' }));
    const res = await waiting;
    expect(res.status).toBe(200);
    const body = (await res.json()) as Prediction;
    expect(body.prediction ?? body.predictions).toBeDefined();
  }, 60_000);

  it('keeps serving after a restart under a running worker, and leaves no job in transit', async () => {
    const { api, client, env, redis } = d;
    expect(d.workers.at(-1)?.child.exitCode).toBeNull();
    expect((await predict(api, 200)).status).toBe(200);
    // Requests in flight across the kill: each ends 200, or 503 while Redis is down; none hangs.
    const during = Array.from({ length: 8 }, (_, i) => predict(api, 300 + i, 10));
    await redis.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    await redis.restart(AOF);
    const statuses = (await Promise.all(during)).map((r) => r.status);
    for (const s of statuses) expect([200, 202, 503]).toContain(s);
    // The worker's blocking read comes back by itself: new requests are answered again.
    await eventually(
      async () => (await predict(api, 400 + (Date.now() % 1000), 5)).status === 200,
      20_000,
    );
    const prefix = env.QUEUE_PREFIX ?? '';
    await eventually(async () => {
      const transit = await client.keys(`${prefix}:predict:fast-transit:*`);
      const left = await Promise.all(transit.map((k) => client.llen(k)));
      return left.every((n) => n === 0) && (await client.llen(`${prefix}:predict:fast`)) === 0;
    }, 15_000);
  }, 60_000);
});

describe('a job waiting on the fast lane: its view, cancel and a paused queue', () => {
  const d = deployment('fastview');

  async function queued(n: number): Promise<string> {
    const res = await fetch(`${d.api.url}/v1/models/breast-cancer/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ features: row(n) }),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }

  it('shows a job on the lane as queued, cancels it, and no worker records it after', async () => {
    const { api, client, env, workers, key } = d;
    await deadConsumer(d, 'gone-before-cancel');
    const id = await queued(500);
    expect(await client.llen(key('fast'))).toBe(1);
    const view = (await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as {
      status: string;
    };
    expect(view.status).toBe('queued');
    expect((await fetch(`${api.url}/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
    const [jobId] = await jobIdsOf(client, env.QUEUE_PREFIX ?? '', [id]);
    workers.push(await startWorkerProcess({ ...env, WORKER_NAME: 'after-cancel' }));
    await eventually(async () => (await client.llen(key('fast'))) === 0, 10_000);
    // Taken off the lane by the worker, found removed: nothing recorded, nothing left in transit.
    await new Promise((r) => setTimeout(r, 300));
    expect(await client.exists(`${key(jobId ?? '')}`)).toBe(0);
    expect(await client.zscore(key('completed'), jobId ?? '')).toBeNull();
    const transit = await client.keys(key('fast-transit:*'));
    for (const t of transit) expect(await client.llen(t)).toBe(0);
    const after = (await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as {
      status: string;
    };
    expect(after.status).toBe('cancelled');
  }, 60_000);

  it('takes nothing off the lane while the queue is paused, and runs the jobs once resumed', async () => {
    const { api, client, env, redis, key } = d;
    const queue = new Queue(PREDICT_QUEUE, {
      connection: { url: redis.url },
      prefix: env.QUEUE_PREFIX,
    });
    queue.on('error', () => undefined);
    try {
      await queue.pause();
      // The worker of the first test notices the pause at its next sweep (1 s).
      await new Promise((r) => setTimeout(r, 1500));
      const id = await queued(600);
      // A job queued while paused waits on BullMQ's list, not on the lane.
      expect(await client.llen(key('fast'))).toBe(0);
      await new Promise((r) => setTimeout(r, 1000));
      const [jobId] = await jobIdsOf(client, env.QUEUE_PREFIX ?? '', [id]);
      expect(await client.hget(key(jobId ?? ''), 'finishedOn')).toBeNull();
      await queue.resume();
      await eventually(
        async () => (await client.hget(key(jobId ?? ''), 'finishedOn')) !== null,
        10_000,
      );
      const view = (await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as {
        status: string;
      };
      expect(view.status).toBe('completed');
    } finally {
      await queue.close();
    }
  }, 60_000);
});

describe('a backlog queued while no worker ran', () => {
  const d = deployment('adopt');

  async function submit(n: number, priority?: number): Promise<string> {
    const res = await fetch(`${d.api.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'breast-cancer', features: row(n), priority }),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: string }).id;
  }

  it("runs BullMQ's waiting jobs the lane's way once a worker starts, and leaves it the rest", async () => {
    const { api, client, env, workers, key } = d;
    const plain = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(800 + i)));
    const urgent = await submit(850, 1);
    const prefix = env.QUEUE_PREFIX ?? '';
    const plainIds = await jobIdsOf(client, prefix, plain);
    const [urgentId = ''] = await jobIdsOf(client, prefix, [urgent]);
    // No worker consumed the lane: BullMQ's add queued them.
    expect(await client.llen(key('wait'))).toBe(12);
    expect(await client.zscore(key('prioritized'), urgentId)).not.toBeNull();
    workers.push(await startWorkerProcess({ ...env, WORKER_NAME: 'backlog' }));
    await eventually(async () => (await client.zcard(key('completed'))) === 13, 20_000);
    for (const id of plainIds) expect(await client.hget(key(id), 'lane')).toBe('fast');
    // A job with a priority is BullMQ's to order: it ran there.
    expect(await client.hget(key(urgentId), 'lane')).toBeNull();
    expect(await client.hget(key(urgentId), 'finishedOn')).not.toBeNull();
    expect(await client.llen(key('wait'))).toBe(0);
    for (const t of await client.keys(key('fast-transit:*'))) expect(await client.llen(t)).toBe(0);
    for (const id of [...plain, urgent]) {
      const view = (await (await fetch(`${api.url}/v1/jobs/${id}`)).json()) as {
        status: string;
        result?: unknown;
      };
      expect(view.status).toBe('completed');
      expect(view.result).toBeDefined();
    }
  }, 60_000);
});

describe('workers that do not consume the fast lane (an older release, or ONLINE_FAST_LANE=false)', () => {
  const d = deployment('fastoff');

  it('has the API send online jobs through BullMQ, where they run', async () => {
    const { api, client, env, workers, key } = d;
    workers.push(
      await startWorkerProcess({ ...env, WORKER_NAME: 'no-lane', ONLINE_FAST_LANE: 'false' }),
    );
    await new Promise((r) => setTimeout(r, 1200));
    const answers = await Promise.all([700, 701, 702].map((n) => predict(api, n, 10)));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await client.scard(key('fast-consumers'))).toBe(0);
    expect(await client.exists(key('fast'))).toBe(0);
    expect(await client.zcard(key('completed'))).toBeGreaterThan(0);
  }, 60_000);
});
