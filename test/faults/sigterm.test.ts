import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PREDICT_QUEUE } from '../../src/shared/keys.js';
import { eventually, uniquePrefix } from '../helpers/env.js';
import { oneSocketAgent, postKeepAlive, type KeepAliveReply } from '../helpers/keep-alive.js';
import { loadLoops, sample } from '../helpers/load.js';
import { scrape, valueOf } from '../helpers/prometheus.js';
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
  const apis: ApiProcess[] = [];
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
    await stopAll([api, ...apis, ...workers]);
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
    // Two jobs at a time: the fast lane hands over queued jobs within microseconds, and with the
    // default 256 the first worker would have run all 600 before the signal could stop it.
    const first = await startWorkerProcess({
      ...env,
      WORKER_NAME: 'first',
      WORKER_CONCURRENCY: '2',
    });
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

  /** Cache lookups the API has made: each one is a request it has read whole. */
  async function cacheLookups(url: string): Promise<number> {
    const metrics = await scrape((path) => fetch(`${url}${path}`));
    return valueOf(metrics, 'inferq_cache_requests_total');
  }

  it('answers every request it had read before SIGTERM (202 at once) and exits 0', async () => {
    const url = `${api.url}/v1/models/breast-cancer/predict`;
    const queue = new Queue(PREDICT_QUEUE, {
      connection: { url: redis.url },
      prefix: env.QUEUE_PREFIX,
    });
    queue.on('error', () => undefined);
    // Paused, the worker takes nothing: the requests are still waiting when the signal comes.
    await queue.pause();
    const read = await cacheLookups(api.url);
    const pending = Array.from({ length: 12 }, (_, n) =>
      sample(url, { features: row(100_000 + n) }, { prefer: 'wait=20' }, 30_000),
    );
    // Every request has been read and looked up in the cache: the server holds all twelve.
    await eventually(async () => (await cacheLookups(api.url)) - read >= 12, 15_000, 20);
    api.child.kill('SIGTERM');
    const signalledAt = Date.now();
    const answered = await Promise.all(pending);
    const answerMs = Math.max(...answered.map((s) => s.endedAt)) - signalledAt;
    expect(await api.exited()).toBe(0);
    const exitMs = Date.now() - signalledAt;
    await queue.resume();
    await queue.close();
    expect(answered.map((s) => s.status)).toEqual(answered.map(() => 202));

    // Every job the API acknowledged is completed by the worker that is still running.
    await eventually(
      async () => {
        const ids = answered.map((s) => s.id ?? '');
        const audit = await auditJobs(client, env.QUEUE_PREFIX ?? '', ids);
        return [...audit.values()].every((a) => a.returnvalue !== undefined);
      },
      30_000,
      200,
    );
    console.log(
      `api SIGTERM: 12 requests read before the signal, all answered 202 within ${answerMs} ms; ` +
        `exited 0 in ${exitMs} ms`,
    );
  }, 90_000);

  it('gives keep-alive clients that send across SIGTERM 200/202 or 503 + Connection: close, never a reset', async () => {
    const second = await startApiProcess(env);
    apis.push(second);
    const url = `${second.url}/v1/models/breast-cancer/predict`;
    let signalledAt = Infinity;
    // 32 clients, one keep-alive socket each, pausing 0-300 ms between requests so that many
    // sockets sit idle when the signal comes (Node's server.close() drops idle sockets).
    const clients = Array.from({ length: 32 }, async (_, c) => {
      const agent = oneSocketAgent();
      const replies: KeepAliveReply[] = [];
      for (let n = 0; ; n++) {
        const reply = await postKeepAlive(
          agent,
          url,
          { features: row(300_000 + 1000 * c + n) },
          { prefer: 'wait=5' },
        );
        replies.push(reply);
        // Told to leave (or failed): a client would go to another replica now.
        if (reply.status === 0 || reply.connection === 'close') break;
        await new Promise((r) => setTimeout(r, Math.random() * 300));
      }
      agent.destroy();
      return replies;
    });
    await new Promise((r) => setTimeout(r, 1500));
    second.child.kill('SIGTERM');
    signalledAt = Date.now();
    expect(await second.exited()).toBe(0);
    const exitMs = Date.now() - signalledAt;
    const loops = await Promise.all(clients);
    const replies = loops.flat();

    expect(replies.filter((r) => r.status === 0)).toEqual([]);
    const bad = replies.filter(
      (r) =>
        r.status !== 200 &&
        r.status !== 202 &&
        !(r.status === 503 && r.code === 'unavailable' && r.retryAfter === '1'),
    );
    expect(bad).toEqual([]);
    // Every client learnt that its connection ends: the last answer of each says close.
    expect(loops.map((l) => l.at(-1)?.connection)).toEqual(loops.map(() => 'close'));
    const refused = replies.filter((r) => r.status === 503);
    // The case of the bug: a request on an idle keep-alive socket after the signal.
    const onIdle = refused.filter((r) => r.reused && r.sentAt >= signalledAt);
    expect(onIdle.length).toBeGreaterThan(0);
    console.log(
      `api SIGTERM, 32 keep-alive clients: ${replies.length} requests, 0 resets; ` +
        `${replies.filter((r) => r.status === 200 || r.status === 202).length} answered 200/202, ` +
        `${refused.length} refused 503 + Connection: close (${onIdle.length} sent on an idle ` +
        `keep-alive socket after the signal); exited 0 in ${exitMs} ms`,
    );
  }, 90_000);
});
