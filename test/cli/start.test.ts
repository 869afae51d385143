import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exited, spawnInferq, stopChild } from '../../src/cli/children.js';
import { eventually, uniquePrefix } from '../helpers/env.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { freePort, pings } from '../helpers/redis-server.js';

describe('inferq start without a Redis', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'inferq-start-'));
  let child: ChildProcess | undefined;

  afterAll(async () => {
    if (child) await stopChild(child);
    rmSync(cwd, { recursive: true, force: true });
  });

  it('starts a private redis-server under .inferq/, serves a prediction, and stops it on SIGTERM', async () => {
    const [redisPort, port] = [await freePort(), await freePort()];
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    expect(await pings(redisPort)).toBe(false);
    let out = '';
    child = spawnInferq(['start'], {
      cwd,
      env: {
        ...process.env,
        REDIS_URL: redisUrl,
        PORT: String(port),
        HOST: '127.0.0.1',
        MODEL_DIR: resolve('models'),
        QUEUE_PREFIX: uniquePrefix('start'),
        WORKER_METRICS_PORT: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    await eventually(() => out.includes('inferq is ready'), 60_000, 100);
    expect(out).toContain('starting a private redis-server');
    expect(out).toContain(`curl -s http://127.0.0.1:${port}/v1/models/breast-cancer/predict`);
    expect(existsSync(join(cwd, '.inferq', 'redis'))).toBe(true);
    expect(await pings(redisPort)).toBe(true);

    const res = await fetch(`http://127.0.0.1:${port}/v1/models/breast-cancer/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: BREAST_CANCER_ROW }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { label: string }).label).toBe('malignant');

    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    // Every child went with it: the API port and the private Redis no longer answer.
    await eventually(async () => !(await pings(redisPort)), 10_000);
    await expect(fetch(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
  }, 90_000);
});

describe('inferq start with an unreachable remote Redis', () => {
  it('exits 1 with a message saying how to get Redis', async () => {
    // TEST-NET-1 (RFC 5737): nothing answers there, and it is not local, so no private Redis.
    const child = spawnInferq(['start'], {
      env: { ...process.env, REDIS_URL: 'redis://192.0.2.1:6379', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    try {
      expect(await exited(child)).toBe(1);
      expect(out).toContain('no Redis answers at redis://192.0.2.1:6379');
      expect(out).toMatch(/apt-get install redis-server|REDIS_URL/);
    } finally {
      await stopChild(child);
    }
  }, 30_000);
});
