import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, spawnInferq, stopChild } from '../../src/cli/children.js';
import { PREDICT_QUEUE } from '../../src/shared/keys.js';
import { eventually, REDIS_URL, removeKeys, uniquePrefix } from '../helpers/env.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { Redis } from 'ioredis';
import { jobIdsOf } from '../helpers/queue-audit.js';

const BURST = 200;

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * A model repository holding breast-cancer 1.1.0 with a 1.5 s batch window: the jobs of a worker
 * using it stay active long enough to be certainly in flight when the worker gets SIGTERM (with
 * 500 ms, a job seen active 200 ms after it was taken could end before the signal on a busy machine).
 */
function slowRepository(): string {
  const dir = mkdtempSync(join(tmpdir(), 'inferq-e2e-'));
  const from = 'models/breast-cancer/1.1.0';
  const to = join(dir, 'breast-cancer', '1.1.0');
  mkdirSync(to, { recursive: true });
  copyFileSync(join(from, 'model.onnx'), join(to, 'model.onnx'));
  const card = JSON.parse(readFileSync(join(from, 'model.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  writeFileSync(
    join(to, 'model.json'),
    JSON.stringify({
      ...card,
      batching: { maxBatchSize: 64, maxBatchDelayMs: 1500, runWhenIdle: false },
    }),
  );
  return dir;
}

/** A breast-cancer row unique to this file: feature 0 carries the seed. */
const rowFor = (seed: number): number[] => [seed + 1, ...BREAST_CANCER_ROW.slice(1)];

interface Child {
  name: string;
  process: ChildProcess;
  output: string[];
}

describe('inferq api and worker processes', () => {
  const prefix = uniquePrefix('e2e');
  const slowModels = slowRepository();
  const children: Child[] = [];
  let port: number;
  let base: string;
  let queue: Queue;

  function start(name: string, command: 'api' | 'worker', env: Record<string, string> = {}): Child {
    const child: Child = {
      name,
      output: [],
      process: spawnInferq([command], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          REDIS_URL,
          QUEUE_PREFIX: prefix,
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'silent',
          WORKER_METRICS_PORT: '0',
          DEFAULT_WAIT_S: '20',
          SHUTDOWN_TIMEOUT_MS: '15000',
          ...env,
        },
      }),
    };
    // Drained so a chatty child never blocks on a full pipe; shown when a test fails.
    child.process.stdout?.on('data', (d: Buffer) => child.output.push(d.toString()));
    child.process.stderr?.on('data', (d: Buffer) => child.output.push(d.toString()));
    children.push(child);
    return child;
  }

  const outputs = () =>
    children.map((c) => `--- ${c.name} (pid ${c.process.pid})\n${c.output.join('')}`).join('\n');

  async function predict(
    features: number[],
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${base}/v1/models/breast-cancer/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  beforeAll(async () => {
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    queue = new Queue(PREDICT_QUEUE, { connection: { url: REDIS_URL }, prefix });
    queue.on('error', () => undefined);
    start('api', 'api');
    start('worker-a', 'worker', { WORKER_NAME: 'e2e-worker-a', MODEL_DIR: slowModels });
    start('worker-b', 'worker', { WORKER_NAME: 'e2e-worker-b' });
    try {
      await eventually(
        async () => {
          const res = await fetch(`${base}/health/ready`).catch(() => undefined);
          if (res?.status !== 200) return false;
          const body = (await res.json()) as { workers: number };
          return body.workers >= 2;
        },
        30_000,
        200,
      );
    } catch (err) {
      throw new Error(`processes did not become ready: ${(err as Error).message}\n${outputs()}`);
    }
  });

  afterAll(async () => {
    await Promise.all(children.map((c) => stopChild(c.process, 5000)));
    await queue.close();
    await removeKeys(prefix);
    rmSync(slowModels, { recursive: true, force: true });
  });

  it('answers a breast-cancer predict with 200 and a label', async () => {
    const { status, body } = await predict(BREAST_CANCER_ROW);
    expect(status, outputs()).toBe(200);
    expect(body).toMatchObject({
      model: 'breast-cancer',
      version: '1.1.0',
      cached: false,
      prediction: 0,
      label: 'malignant',
    });
    expect(body.probabilities).toHaveLength(2);
  });

  it('answers every request of a burst with 200 while a worker is stopped with SIGTERM, which exits 0', async () => {
    const workerA = children.find((c) => c.name === 'worker-a');
    if (!workerA) throw new Error('no worker-a');
    let answered = 0;
    const burst = Array.from({ length: BURST }, (_, i) =>
      predict(rowFor(i)).then((r) => {
        answered++;
        return r;
      }),
    );
    // Stop worker A in the middle of the burst, while it holds jobs (in its 1.5 s batch window).
    // Requests are gathered into few jobs, which worker B may take all of: keep sending until
    // worker A holds one.
    let extra = 0;
    await eventually(
      async () => {
        const active = await queue.getJobs(['active']);
        if (active.some((j) => j.processedBy === 'e2e-worker-a')) return true;
        burst.push(
          predict(rowFor(BURST + extra++)).then((r) => {
            answered++;
            return r;
          }),
        );
        return false;
      },
      20_000,
      10,
    );
    const stoppedAt = Date.now();
    workerA.process.kill('SIGTERM');
    const [results, code] = await Promise.all([Promise.all(burst), exited(workerA.process)]);

    expect(answered).toBe(BURST + extra);
    expect(code, outputs()).toBe(0);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(results.every((r) => r.body.label === 'malignant' || r.body.label === 'benign')).toBe(
      true,
    );
    const ids = results.map((r) => String(r.body.id));
    expect(new Set(ids).size).toBe(BURST + extra);

    // Both workers took part; none of the jobs ran twice or failed. Concurrent requests share
    // gathered jobs: a response id (encrypted) names its part of one.
    const reader = new Redis(REDIS_URL);
    const jobIds = [...new Set(await jobIdsOf(reader, prefix, ids).finally(() => reader.quit()))];
    const jobs = await Promise.all(jobIds.map((id) => Job.fromId(queue, id)));
    const by = new Map<string, number>();
    for (const job of jobs) {
      expect(job?.attemptsMade).toBe(1);
      expect(job?.failedReason ?? undefined).toBeUndefined();
      by.set(String(job?.processedBy), (by.get(String(job?.processedBy)) ?? 0) + 1);
    }
    expect(by.get('e2e-worker-a') ?? 0).toBeGreaterThan(0);
    expect(by.get('e2e-worker-b') ?? 0).toBeGreaterThan(0);
    expect(Date.now() - stoppedAt).toBeLessThan(20_000);
    // Worker A was holding jobs when SIGTERM came, and finished them before exiting.
    const aFinishedAfterStop = jobs.filter(
      (j) => j?.processedBy === 'e2e-worker-a' && (j.finishedOn ?? 0) > stoppedAt,
    );
    expect(aFinishedAfterStop.length).toBeGreaterThan(0);
  });

  it('keeps serving with the remaining worker', async () => {
    const { status, body } = await predict(rowFor(10 * BURST));
    expect(status).toBe(200);
    expect(body.cached).toBe(false);
  });

  it('stops the API with SIGTERM and exit code 0', async () => {
    const api = children.find((c) => c.name === 'api');
    if (!api) throw new Error('no api');
    api.process.kill('SIGTERM');
    expect(await exited(api.process), outputs()).toBe(0);
    await expect(fetch(`${base}/health/live`)).rejects.toThrow();
  });
});
