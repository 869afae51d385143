import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, uniquePrefix } from '../helpers/env.js';
import { loadLoops, sample, type Sample } from '../helpers/load.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';
import { auditJobs, jobIdsOf, type JobAudit } from '../helpers/queue-audit.js';
import { PREDICT_QUEUE } from '../../src/shared/keys.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

// appendfsync always: Redis writes each command to disk before it replies, so every job the API
// acknowledged with 202 is on disk when the server is killed.
const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
const WAIT_S = 3;

/** A breast-cancer row no other request of this file sends. */
const row = (n: number) => Array.from({ length: 30 }, (_, i) => 1 + i + n / 4096);

describe('Redis stopped under load and started again (real processes, own redis-server)', () => {
  let redis: RedisServer;
  let api: ApiProcess;
  let worker: InferqProcess;
  let prefix: string;

  beforeAll(async () => {
    redis = await startRedisServer({ args: AOF });
    prefix = uniquePrefix('outage');
    const env = {
      REDIS_URL: redis.url,
      QUEUE_PREFIX: prefix,
      MODEL_DIR: 'models',
      // Jobs a worker held when Redis died are re-run after the lock expires (5 s, not 30 s).
      WORKER_LOCK_MS: '5000',
      WORKER_STALLED_INTERVAL_MS: '2000',
    };
    // One at a time, so that afterAll can stop the first if the second fails to start.
    api = await startApiProcess(env);
    worker = await startWorkerProcess(env);
  }, 60_000);

  afterAll(async () => {
    await stopAll([api, worker]);
    await redis?.dispose();
  });

  it('answers 503 fast while Redis is down, recovers by itself, and loses no acknowledged job', async () => {
    const predictUrl = `${api.url}/v1/models/breast-cancer/predict`;
    const warm = await sample(predictUrl, { features: row(0) });
    expect(warm.status).toBe(200);

    const predicts = loadLoops(8, (n) =>
      sample(predictUrl, { features: row(1 + n) }, { prefer: `wait=${WAIT_S}` }),
    );
    const submits = loadLoops(2, (n) =>
      sample(`${api.url}/v1/jobs`, { model: 'breast-cancer', features: row(1_000_000 + n) }),
    );
    await new Promise((r) => setTimeout(r, 1500));

    await redis.stop('SIGKILL');
    const killedAt = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    const ready = await fetch(`${api.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { status: string }).status).toBe('unavailable');
    await new Promise((r) => setTimeout(r, 1500));
    expect(api.child.exitCode).toBeNull();
    expect(worker.child.exitCode).toBeNull();

    await redis.restart(AOF);
    const restartedAt = Date.now();
    let probe = 0;
    let recoveredAt = 0;
    await eventually(
      async () => {
        const s = await sample(
          predictUrl,
          { features: row(2_000_000 + probe++) },
          { prefer: 'wait=1' },
        );
        recoveredAt = s.endedAt;
        return s.status === 200;
      },
      20_000,
      100,
    );
    const all = [...(await predicts.stop()), ...(await submits.stop())];

    // Nothing hung and nothing but 200/202/503 came back; every 503 is `unavailable` with Retry-After.
    expect(all.filter((s) => s.status === 0)).toEqual([]);
    expect(new Set(all.map((s) => s.status))).toEqual(new Set([200, 202, 503]));
    const unavailable = all.filter((s) => s.status === 503);
    expect(unavailable.every((s) => s.code === 'unavailable' && Number(s.retryAfter) >= 1)).toBe(
      true,
    );
    // Requests sent while Redis was down were refused within a second.
    const duringOutage = all.filter(
      (s) => s.startedAt > killedAt + 100 && s.startedAt < restartedAt - 500,
    );
    expect(duringOutage.length).toBeGreaterThan(20);
    expect(duringOutage.filter((s) => s.status !== 503)).toEqual([]);
    expect(duringOutage.filter((s) => s.endedAt - s.startedAt >= 1000)).toEqual([]);
    // Requests already waiting for a result when Redis died were answered by their deadline.
    const inFlight = all.filter((s) => s.startedAt <= killedAt && s.endedAt > killedAt);
    expect(inFlight.filter((s) => s.endedAt - s.startedAt > WAIT_S * 1000 + 1500)).toEqual([]);
    expect(recoveredAt - restartedAt).toBeLessThan(10_000);
    const slowest503 = Math.max(...duringOutage.map((s) => s.endedAt - s.startedAt));
    console.log(
      `redis outage: ${all.length} requests, ${unavailable.length} answered 503 (slowest ${slowest503} ms), ` +
        `${all.filter((s) => s.status === 202).length} acknowledged with 202; ` +
        `predict answered 200 again ${recoveredAt - restartedAt} ms after redis-server was back`,
    );

    await expectAcknowledgedJobsDone(all);
  }, 90_000);

  async function expectAcknowledgedJobsDone(all: Sample[]): Promise<void> {
    const acked = all.filter((s) => s.status === 202 && s.id).map((s) => s.id ?? '');
    expect(acked.length).toBeGreaterThan(10);
    const client = new Redis(redis.url);
    let unfinished: [string, JobAudit][] = [];
    try {
      await eventually(
        async () => {
          const audit = await auditJobs(client, prefix, acked);
          unfinished = [...audit].filter(([, a]) => a.finishedOn === undefined || !a.returnvalue);
          return unfinished.length === 0;
        },
        30_000,
        250,
      ).catch(async () => {
        // Name the jobs that were lost, where they are, and what the processes said: in the
        // error itself, so that a CI log cut to its tail still shows it.
        const lines = [`unfinished ${unfinished.length} of ${acked.length} acknowledged jobs:`];
        const ids = await jobIdsOf(
          client,
          prefix,
          unfinished.slice(0, 5).map(([id]) => id),
        );
        const queue = `${prefix}:${PREDICT_QUEUE}:`;
        for (const id of ids) {
          const [lock, hash, wait, active, failed, fast] = await Promise.all([
            client.pttl(`${queue}${id}:lock`),
            client.hgetall(`${queue}${id}`),
            client.lpos(`${queue}wait`, id),
            client.lpos(`${queue}active`, id),
            client.zscore(`${queue}failed`, id),
            client.lrange(`${queue}fast`, 0, -1),
          ]);
          delete hash.data;
          const onLane = fast.some((el) => el.startsWith(`${id}|`));
          lines.push(`${id} ${JSON.stringify({ wait, active, failed, onLane, lock, hash })}`);
        }
        for (const t of await client.keys(`${queue}fast-*`)) {
          const type = await client.type(t);
          const items =
            type === 'list'
              ? await client.lrange(t, 0, 5)
              : type === 'set'
                ? await client.smembers(t)
                : [await client.pttl(t)];
          lines.push(`${t} (${type}) ${JSON.stringify(items).slice(0, 300)}`);
        }
        const counts = await Promise.all(
          ['wait', 'active', 'fast'].map((l) => client.llen(`${queue}${l}`)),
        );
        lines.push(
          `wait/active/fast lengths ${counts.join('/')}; marker ${await client.zcard(`${queue}marker`)}`,
        );
        lines.push('worker warnings:', ...warnings(worker.output()));
        lines.push('api warnings:', ...warnings(api.output()));
        throw new Error(lines.join('\n'));
      });
    } finally {
      client.disconnect();
    }
  }
});

/** The log lines of level warn and above (pino levels 40+), the last 30. */
function warnings(output: string): string[] {
  return output
    .split('\n')
    .filter((line) => /"level":(4|5|6)\d/.test(line))
    .slice(-30)
    .map((line) => line.slice(0, 400));
}
