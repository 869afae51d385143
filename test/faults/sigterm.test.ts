import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_QUEUE } from '../../src/shared/keys.js';
import { eventually, uniquePrefix } from '../helpers/env.js';
import { loadLoops, sample } from '../helpers/load.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';
import { auditJobs } from '../helpers/queue-audit.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

/** A breast-cancer row no other request of this file sends. */
const row = (n: number) => Array.from({ length: 30 }, (_, i) => 2 + i + n / 8192);

describe('SIGTERM under load (real processes, own redis-server)', () => {
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
      QUEUE_PREFIX: uniquePrefix('sigterm'),
      MODEL_DIR: 'models',
      // Small batches and slots, so that a burst is still being worked on when the signal lands.
      WORKER_CONCURRENCY: '32',
      MAX_BATCH_SIZE: '8',
      SHUTDOWN_TIMEOUT_MS: '20000',
    };
    api = await startApiProcess(env);
  }, 60_000);

  afterAll(async () => {
    await stopAll([api, ...workers]);
    client?.disconnect();
    await redis?.dispose();
  });

  async function submitJobs(count: number, offset: number): Promise<string[]> {
    const ids: string[] = [];
    const loops = loadLoops(16, async (n) => {
      const s = await sample(`${api.url}/v1/jobs`, {
        model: 'breast-cancer',
        features: row(offset + n),
      });
      if (s.status === 202 && s.id) ids.push(s.id);
      return s;
    });
    await eventually(() => ids.length >= count, 30_000, 20);
    const samples = await loops.stop();
    expect(samples.every((s) => s.status === 202)).toBe(true);
    return ids;
  }

  const key = (type: string) => `${env.QUEUE_PREFIX}:${PREDICT_QUEUE}:${type}`;

  it('lets a worker finish its active jobs on SIGTERM, exit 0, and leave the rest to the next', async () => {
    const ids = await submitJobs(600, 0);
    const first = await startWorkerProcess({ ...env, WORKER_NAME: 'first' });
    workers.push(first);
    await eventually(async () => (await client.zcard(key('completed'))) >= 60, 30_000, 10);
    first.child.kill('SIGTERM');
    const signalledAt = Date.now();
    expect(await first.exited()).toBe(0);
    const drainMs = Date.now() - signalledAt;
    // Nothing was left half-done: no job is active once the worker has gone.
    expect(await client.llen(key('active'))).toBe(0);
    const doneByFirst = await client.zcard(key('completed'));
    expect(doneByFirst).toBeLessThan(ids.length);

    workers.push(await startWorkerProcess({ ...env, WORKER_NAME: 'second' }));
    await eventually(
      async () => (await client.zcard(key('completed'))) === ids.length,
      30_000,
      100,
    );
    const audit = await auditJobs(client, env.QUEUE_PREFIX ?? '', ids);
    const by = new Map<string, number>();
    for (const a of audit.values()) {
      expect(a.attemptsStarted).toBe(1);
      expect(a.returnvalue).toBeDefined();
      by.set(a.processedBy ?? '?', (by.get(a.processedBy ?? '?') ?? 0) + 1);
    }
    expect([...by.keys()].sort()).toEqual(['first', 'second']);
    console.log(
      `worker SIGTERM: drained and exited 0 in ${drainMs} ms; first ran ${by.get('first')} jobs, second ${by.get('second')}`,
    );
  }, 90_000);

  it('lets the API answer every in-flight request on SIGTERM (200 or 202) and exit 0', async () => {
    const url = `${api.url}/v1/models/breast-cancer/predict`;
    const load = loadLoops(12, (n) =>
      sample(url, { features: row(100_000 + n) }, { prefer: 'wait=5' }),
    );
    await new Promise((r) => setTimeout(r, 1500));
    api.child.kill('SIGTERM');
    const signalledAt = Date.now();
    expect(await api.exited()).toBe(0);
    const exitMs = Date.now() - signalledAt;
    const samples = await load.stop();

    const before = samples.filter((s) => s.startedAt < signalledAt - 50);
    expect(before.length).toBeGreaterThanOrEqual(12);
    expect(before.filter((s) => s.status !== 200 && s.status !== 202)).toEqual([]);
    // After the signal: refused at the socket (0) or told to retry (503 unavailable), never a 500.
    const after = samples.filter((s) => s.startedAt >= signalledAt - 50);
    expect(after.every((s) => s.status < 500 || s.code === 'unavailable')).toBe(true);
    expect(after.every((s) => s.status !== 500)).toBe(true);

    // Every job the API acknowledged is completed by the worker that is still running.
    const acked = samples.filter((s) => (s.status === 202 || s.status === 200) && s.id);
    await eventually(
      async () => {
        const audit = await auditJobs(
          client,
          env.QUEUE_PREFIX ?? '',
          acked.map((s) => s.id ?? ''),
        );
        return [...audit.values()].every((a) => a.returnvalue !== undefined);
      },
      30_000,
      200,
    );
    console.log(
      `api SIGTERM: exited 0 in ${exitMs} ms; ${before.length} requests in flight or done before the signal, ` +
        `${before.filter((s) => s.status === 202).length} of them 202`,
    );
  }, 90_000);
});
