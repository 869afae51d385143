import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopChild } from '../../src/cli/children.js';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { loadConfig } from '../../src/shared/config.js';
import { waitForReady } from '../../src/shared/redis.js';
import { startWorker, type WorkerHandle } from '../../src/worker/worker.js';
import { eventually, testLogger, uniquePrefix } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { freePort, pings, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

describe('through Redis Sentinel (REDIS_SENTINELS)', () => {
  let master: RedisServer;
  let sentinel: ChildProcess | undefined;
  let api: ApiHandle | undefined;
  let worker: WorkerHandle | undefined;

  beforeAll(async () => {
    master = await startRedisServer();
    const port = await freePort();
    const conf = join(master.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      `port ${port}\nbind 127.0.0.1\ndir ${master.dir}\nsentinel monitor main 127.0.0.1 ${master.port} 1\n`,
    );
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await eventually(() => pings(port), 10_000, 100);
    // REDIS_URL names no host here: the master's address comes from the Sentinel.
    const config = loadConfig({
      REDIS_URL: 'redis://unused.invalid:1',
      REDIS_SENTINELS: `127.0.0.1:${port}`,
      REDIS_SENTINEL_NAME: 'main',
      QUEUE_PREFIX: uniquePrefix('sentinel'),
      LOG_LEVEL: 'silent',
      MODEL_DIR: 'models',
    });
    api = await buildApi(config, testLogger('api'));
    await waitForReady(api.deps.redis);
    worker = await startWorker({ config, logger: testLogger('worker') });
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    if (sentinel) await stopChild(sentinel, 5000);
    await master?.dispose();
  });

  it('finds the master through the Sentinel and serves a prediction', async () => {
    const res = await api!.app.request('/v1/models/breast-cancer/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: uniqueRow(7) }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { cached: boolean }).cached).toBe(false);
  });

  it('rejects REDIS_SENTINELS together with REDIS_CLUSTER_NODES, naming the variable', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: 'a:1', REDIS_CLUSTER_NODES: 'b:2' })).toThrow(
      /REDIS_SENTINELS/,
    );
  });
});
