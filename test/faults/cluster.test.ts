import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { ConfigError, loadConfig, type Config } from '../../src/shared/config.js';
import { closeRedis, createRedis, waitForReady } from '../../src/shared/redis.js';
import { uniquePrefix, testLogger } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { startWorkerProcess, stopAll, type InferqProcess } from '../helpers/processes.js';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis-server.js';

const PREDICT = '/v1/models/breast-cancer/predict';
/**
 * Unique cache-miss requests of the load whose command spread is measured: enough that the
 * deployment's periodic work on one master (stalled checks, sweeps; a CI run once read 48% on
 * one master over a 1.7 s load of 600) cannot outweigh the load's own commands.
 */
const MISS_REQUESTS = 1500;
// Redis's own bookkeeping and this test's probes, not the deployment's work.
const ADMIN_COMMANDS =
  /^cmdstat_(info|config|cluster|client|command|ping|hello|readonly|select|auth)$/;

const fmt = (shares: number[]) => shares.map((s) => `${(s * 100).toFixed(1)}%`).join(' / ');

/** Calls of work commands since the last CONFIG RESETSTAT, from INFO commandstats. */
function workCalls(info: string): number {
  let calls = 0;
  for (const line of info.split('\n')) {
    const m = /^(cmdstat_[^:]+):calls=(\d+)/.exec(line.trim());
    if (m && !ADMIN_COMMANDS.test(m[1] ?? '')) calls += Number(m[2]);
  }
  return calls;
}

describe('cluster settings', () => {
  it('rejects a QUEUE_PREFIX without a hash tag when REDIS_CLUSTER_NODES is set', () => {
    const load = () =>
      loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001', QUEUE_PREFIX: 'inferq' });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/QUEUE_PREFIX.*hash tag.*REDIS_CLUSTER_NODES/);
    expect(() =>
      loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: '{}x' }),
    ).toThrow(/QUEUE_PREFIX/);
    expect(loadConfig({ QUEUE_PREFIX: 'inferq' }).QUEUE_PREFIX).toBe('inferq');
  });

  it('rejects a malformed node list naming REDIS_CLUSTER_NODES', () => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1' })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' a:1 , b:2 ' }).REDIS_CLUSTER_NODES).toEqual([
      'a:1',
      'b:2',
    ]);
  });

  it('accepts rediss:// URLs and refuses other schemes', () => {
    expect(loadConfig({ REDIS_URL: 'rediss://user:pw@redis.example:6380' }).REDIS_URL).toMatch(
      /^rediss:/,
    );
    expect(() => loadConfig({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/);
  });
});

describe('on a real three-node Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  let config: Config;
  let api: ApiHandle;
  let worker: InferqProcess | undefined;

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    api.app.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  const masters = () => cluster.servers;

  /** Each master's share of the work commands Redis ran during `work`. */
  async function commandShares(work: () => Promise<void>): Promise<number[]> {
    const clients = masters().map((n) => new Redis({ port: n.port, host: '127.0.0.1' }));
    try {
      await Promise.all(clients.map((c) => c.config('RESETSTAT')));
      await work();
      const calls = await Promise.all(
        clients.map(async (c) => workCalls(await c.info('commandstats'))),
      );
      const total = calls.reduce((a, b) => a + b, 0);
      return calls.map((n) => n / total);
    } finally {
      for (const c of clients) c.disconnect();
    }
  }

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      QUEUE_PREFIX: uniquePrefix('cluster'),
      MODEL_DIR: 'models',
    };
    config = loadConfig({ ...env, LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1' });
    api = await buildApi(config, testLogger('api'));
    worker = await startWorkerProcess({ ...env, WORKER_NAME: 'cluster-worker' });
  }, 90_000);

  afterAll(async () => {
    await stopAll([worker]);
    await api?.close();
    await cluster?.dispose();
  });

  it('connects every role as a Cluster client and reports ready', async () => {
    expect(api.deps.redis).toBeInstanceOf(Cluster);
    const res = await api.app.request('/health/ready');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', redis: 'ok', workers: 1 });
  });

  it('predicts through the queue, then answers the same input from the cache', async () => {
    const features = uniqueRow(1);
    const first = await post(PREDICT, { features });
    expect(first.status).toBe(200);
    const a = (await first.json()) as { id: string; cached: boolean; label: string };
    expect(a.cached).toBe(false);
    const second = await post(PREDICT, { features });
    const b = (await second.json()) as { id: string; cached: boolean };
    expect(b).toMatchObject({ id: a.id, cached: true });
  });

  it('queues an asynchronous job and long-polls it to completion', async () => {
    const res = await post('/v1/jobs', { model: 'diabetes', features: uniqueRow(2, 10) });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const view = await api.app.request(`/v1/jobs/${id}?wait=10`);
    expect(await view.json()).toMatchObject({ id, status: 'completed', model: 'diabetes' });
  });

  it('replays an Idempotency-Key and coalesces identical concurrent requests', async () => {
    const body = { model: 'breast-cancer', features: uniqueRow(3) };
    const one = (await (await post('/v1/jobs', body, { 'Idempotency-Key': 'k-1' })).json()) as {
      id: string;
    };
    const two = (await (await post('/v1/jobs', body, { 'Idempotency-Key': 'k-1' })).json()) as {
      id: string;
    };
    expect(two.id).toBe(one.id);

    const features = uniqueRow(4);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => post(PREDICT, { features })),
    );
    const ids = await Promise.all(
      answers.map(async (r) => ((await r.json()) as { id: string }).id),
    );
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(new Set(ids).size).toBe(1);
  });

  it('runs a small batch to completion and streams its results', async () => {
    const items = Array.from({ length: 25 }, (_, i) => ({
      id: `i${i}`,
      features: uniqueRow(100 + i),
    }));
    const res = await post('/v1/batches', { model: 'breast-cancer', items });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const view = await api.app.request(`/v1/batches/${id}?wait=20`);
    expect(await view.json()).toMatchObject({ status: 'completed', completed: 25, failed: 0 });
    const lines = (await (await api.app.request(`/v1/batches/${id}/results`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; id: string; status: string });
    expect(lines.map((l) => l.id)).toEqual(items.map((i) => i.id));
    expect(lines.every((l) => l.status === 'completed')).toBe(true);
  });

  it('gives every master 20-45% of the commands under cache-miss load and during a batch', async () => {
    const load = await commandShares(async () => {
      let next = 0;
      const send = async () => {
        while (next < MISS_REQUESTS) {
          const res = await post(PREDICT, { features: uniqueRow(500_000 + next++) });
          expect(res.status).toBe(200);
        }
      };
      await Promise.all(Array.from({ length: 16 }, send));
    });
    const rows = 20_000;
    const body = Array.from({ length: rows }, (_, i) =>
      JSON.stringify({ id: `r${i}`, features: uniqueRow(600_000 + i) }),
    ).join('\n');
    let results: { index: number; id: string; status: string; label?: string }[] = [];
    const batch = await commandShares(async () => {
      const res = await api.app.request('/v1/batches?model=breast-cancer', {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body,
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      const text = await (await api.app.request(`/v1/batches/${id}/results`)).text();
      results = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as (typeof results)[number]);
    });
    console.log(
      `per-master share of commands: cache-miss load ${fmt(load)}, ${rows}-row batch ${fmt(batch)}`,
    );
    for (const share of [...load, ...batch]) {
      expect(share).toBeGreaterThanOrEqual(0.2);
      expect(share).toBeLessThanOrEqual(0.45);
    }
    // Every row answered, in order, and the same as the online path answers it.
    expect(results.map((r) => r.index)).toEqual(Array.from({ length: rows }, (_, i) => i));
    expect(results.every((r) => r.status === 'completed')).toBe(true);
    for (const i of [0, 4_321, 19_999]) {
      const online = (await (await post(PREDICT, { features: uniqueRow(600_000 + i) })).json()) as {
        label: string;
      };
      expect(results[i]).toMatchObject({ id: `r${i}`, label: online.label });
    }
  }, 180_000);

  it('spreads the shard queues and per-request keys over every master', async () => {
    expect(config.QUEUE_SHARDS).toBe(6);
    const perNode = await Promise.all(
      masters().map(async (node) => {
        const redis = new Redis({ port: node.port, host: '127.0.0.1' });
        try {
          const base = config.QUEUE_PREFIX.slice(1, -1);
          const keys = [...(await redis.keys(`{${base}-*`)), ...(await redis.keys(`${base}:*`))];
          return keys;
        } finally {
          redis.disconnect();
        }
      }),
    );
    for (const keys of perNode) {
      // Two of the six shard queues live on each master, beside cached results of the load's inputs.
      expect(new Set(keys.filter((k) => k.endsWith(':predict:meta'))).size).toBe(2);
      expect(keys.some((k) => k.includes(':cache:'))).toBe(true);
    }
  });

  it("on one shard, reads gathered requests' cache entries where their job is queued", async () => {
    // QUEUE_SHARDS=1 keeps every key under the prefix's tag: the lookups travel with ENQUEUE.
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodes.join(','),
      QUEUE_PREFIX: uniquePrefix('cluster1'),
      QUEUE_SHARDS: '1',
      MODEL_DIR: 'models',
    };
    const one = await buildApi(
      loadConfig({ ...env, LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1' }),
      testLogger('api-one-shard'),
    );
    const lone = await startWorkerProcess({ ...env, WORKER_NAME: 'cluster-one-shard' });
    try {
      const deadline = Date.now() + 15_000;
      while (!one.deps.gather.canLookUp({ hash: 'x' }) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(one.deps.gather.canLookUp({ hash: 'x' })).toBe(true);
      const send = async (n: number) =>
        one.app.request(PREDICT, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ features: uniqueRow(90_000 + n) }),
        });
      const first = await Promise.all(Array.from({ length: 40 }, (_, n) => send(n)));
      expect(first.map((r) => r.status)).toEqual(Array(40).fill(200));
      const again = await Promise.all(Array.from({ length: 40 }, (_, n) => send(n)));
      const bodies = (await Promise.all(again.map((r) => r.json()))) as { cached: boolean }[];
      expect(bodies.every((b) => b.cached)).toBe(true);
    } finally {
      await stopAll([lone]);
      await one.close();
    }
  }, 60_000);

  it('builds Cluster clients for both connection roles from createRedis', async () => {
    for (const role of ['producer', 'blocking'] as const) {
      const client = createRedis({ url: 'redis://127.0.0.1', clusterNodes: cluster.nodes, role });
      try {
        await waitForReady(client);
        expect(await client.ping()).toBe('PONG');
      } finally {
        await closeRedis(client);
      }
    }
  });
});
