import { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobService } from '../../src/api/jobs/job-service.js';
import { FastLanes } from '../../src/api/jobs/fast-lanes.js';
import { ResultHub } from '../../src/api/jobs/results-hub.js';
import { PREDICT_JOB, type PredictJobData } from '../../src/shared/jobs.js';
import { REDIS_URL, testLogger } from '../helpers/env.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

const REQUESTS = 2000;

/** A breast-cancer row no other request of this file sends: feature 0 carries the seed. */
const rowFor = (seed: number): number[] => [seed + 1, ...BREAST_CANCER_ROW.slice(1)];

/** Local ports of this process's sockets to Redis (vitest runs each file in its own process). */
function ownRedisPorts(): Set<number> {
  const { port } = new URL(REDIS_URL);
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const ports = new Set<number>();
  for (const h of handles) {
    if (h instanceof Socket && h.remotePort === Number(port || 6379) && h.localPort)
      ports.add(h.localPort);
  }
  return ports;
}

/** Connections of this process named inferq-api*, as Redis lists them (CLIENT LIST, `name=`). */
async function apiConnections(observer: Redis): Promise<string[]> {
  const ours = ownRedisPorts();
  const list = (await observer.client('LIST')) as string;
  return list
    .split('\n')
    .map((line) => ({
      name: / name=(\S*)/.exec(line)?.[1] ?? '',
      port: Number(/ addr=[^ ]*:(\d+)/.exec(line)?.[1]),
    }))
    .filter((c) => c.name.startsWith('inferq-api') && ours.has(c.port))
    .map((c) => c.name)
    .sort();
}

describe('waiting for results', () => {
  let stack: TestStack;
  let observer: Redis;

  beforeAll(async () => {
    stack = await createStack();
    observer = new Redis(REDIS_URL, { connectionName: 'waiters-test-observer' });
  });

  afterAll(async () => {
    observer.disconnect();
    await stack.close();
  });

  it(`answers ${REQUESTS} concurrent predict requests with 200 over a constant number of API connections`, async () => {
    // Let the API's lazily opened connections come up before counting.
    expect(
      (await stack.post('/v1/models/breast-cancer/predict', { features: rowFor(-1) })).status,
    ).toBe(200);
    const before = await apiConnections(observer);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(before).toContain('inferq-api');
    expect(before).toContain('inferq-api-replies');

    let answered = 0;
    const requests = Array.from({ length: REQUESTS }, (_, i) =>
      stack.post('/v1/models/breast-cancer/predict', { features: rowFor(i) }).then(async (res) => {
        answered++;
        return {
          status: res.status,
          body: (await res.json()) as { id: string; cached: boolean; prediction: number },
        };
      }),
    );
    const during: string[][] = [];
    let peakWaiters = 0;
    while (answered < REQUESTS) {
      during.push(await apiConnections(observer));
      peakWaiters = Math.max(peakWaiters, stack.api.hub.size);
      await new Promise((r) => setTimeout(r, 100));
    }
    const results = await Promise.all(requests);
    const after = await apiConnections(observer);

    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(
      results.every((r) => r.body.cached === false && typeof r.body.prediction === 'number'),
    ).toBe(true);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(REQUESTS);
    expect(during.length).toBeGreaterThan(0);
    for (const sample of during) expect(sample).toEqual(before);
    expect(after).toEqual(before);
    // Many requests waited at once, and none is left waiting.
    expect(peakWaiters).toBeGreaterThan(1);
    expect(stack.api.hub.size).toBe(0);
  });

  it('lets a hub wait on a job that completed before it registered run out, while waitFor answers from the job', async () => {
    const res = await stack.post('/v1/jobs', {
      model: 'breast-cancer',
      features: rowFor(REQUESTS + 1),
    });
    const { id } = (await res.json()) as { id: string };
    const done = await stack.request(`/v1/jobs/${id}?wait=5`);
    expect(((await done.json()) as { status: string }).status).toBe('completed');
    const ref = await stack.refOf(id);

    // The long-poll may have been answered from the job hash before the queue event arrived: let
    // the event pass first. Then a bare wait only ends at its deadline, without an outcome.
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const missed = await stack.api.hub.wait(ref.jobId, 300).promise;
    expect(missed).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    const quick = Date.now();
    const outcome = await stack.api.deps.jobs.waitFor(ref, 5000);
    expect(outcome?.state).toBe('completed');
    expect(outcome?.state === 'completed' && outcome.result.jobId).toBe(ref.jobId);
    expect(outcome?.state === 'completed' && outcome.result.results).toHaveLength(1);
    expect(Date.now() - quick).toBeLessThan(1000);
    expect(stack.api.hub.size).toBe(0);
  });

  it('answers a waiter whose reply never comes (a job another replica queued) by reading the job', async () => {
    const { config, deps } = { config: stack.config, deps: stack.api.deps };
    // A replica that queued nothing: the worker replies elsewhere, so this hub must read the job.
    const deafHub = new ResultHub(deps.queue, deps.redis, testLogger('hub'));
    const lanes = new FastLanes(config, deps.queue.shards, deps.redis);
    const jobs = new JobService(
      config,
      deps.queue,
      deps.redis,
      deps.keys,
      deafHub,
      'elsewhere',
      lanes,
    );
    try {
      const data: PredictJobData = {
        model: 'breast-cancer',
        version: '1.1.0',
        rows: 1,
        values: rowFor(REQUESTS + 2),
        format: 'task',
        single: true,
      };
      // Delayed so that it is still pending when the wait starts.
      const job = await deps.queue.add(PREDICT_JOB, data, { delay: 100 });
      const started = Date.now();
      const outcome = await jobs.waitFor({ jobId: job.id ?? '' }, 5000);
      const elapsed = Date.now() - started;
      expect(outcome?.state).toBe('completed');
      expect(elapsed).toBeLessThan(3000);
      expect(deafHub.size).toBe(0);
    } finally {
      deafHub.releaseAll();
      lanes.close();
    }
  });
});
