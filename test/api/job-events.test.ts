import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/server.js';
import { eventually, removeKeys, testConfig, testLogger } from '../helpers/env.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { loose, sseEvents, type SseEvent } from '../helpers/live-clients.js';
import { createStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let base: string;

beforeAll(async () => {
  // No worker at first: jobs stay queued until a test starts one.
  stack = await createStack({ worker: false });
  const port = await stack.api.listen(0, '127.0.0.1');
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await stack?.close();
});

async function queueJob(seed: number): Promise<string> {
  const res = await stack.post('/v1/jobs', { model: 'breast-cancer', features: uniqueRow(seed) });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function collect(events: AsyncGenerator<SseEvent>): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('GET /v1/jobs/{id}/events', () => {
  it('answers 404 job_not_found in the JSON envelope for an unknown job', async () => {
    const res = await fetch(`${base}/v1/jobs/no-such-job/events`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json().then(loose)).toMatchObject({ error: { code: 'job_not_found' } });
  });

  it('ends with an error event when a queued job is cancelled', async () => {
    const id = await queueJob(1);
    const events = sseEvents(`${base}/v1/jobs/${id}/events`);
    const first = await events.next();
    expect(first.value).toMatchObject({ event: 'status', data: { id, status: 'queued' } });
    const del = await stack.request(`/v1/jobs/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const rest = await collect(events);
    expect(rest).toEqual([
      { event: 'error', data: { code: 'job_not_found', message: `Job "${id}" was cancelled.` } },
    ]);
  });

  it('stops following a job when the client disconnects', async () => {
    const id = await queueJob(4);
    const events = sseEvents(`${base}/v1/jobs/${id}/events`);
    expect((await events.next()).value).toMatchObject({
      event: 'status',
      data: { status: 'queued' },
    });
    expect(stack.api.hub.size).toBe(1);
    await events.return(undefined);
    await eventually(() => stack.api.hub.size === 0);
  });

  it('streams queued, then active, then one result event, then ends', async () => {
    const id = await queueJob(2);
    const res = await fetch(`${base}/v1/jobs/${id}/events`);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    await res.body?.cancel();
    const events = sseEvents(`${base}/v1/jobs/${id}/events`);
    const first = await events.next();
    expect(first.value).toMatchObject({
      event: 'status',
      data: { id, status: 'queued', model: 'breast-cancer', version: '1.1.0' },
    });
    await stack.startWorker();
    const rest = await collect(events);
    expect(rest.map((e) => `${e.event}:${e.data.status ?? e.data.code}`)).toEqual([
      'status:active',
      'result:completed',
    ]);
    const result = rest[1]!.data;
    expect(result.result.probabilities).toHaveLength(2);
    const view = await (await stack.request(`/v1/jobs/${id}`)).json().then(loose);
    expect(result).toEqual(view);
  });

  it('sends the status and the result at once for a job that has finished', async () => {
    const id = await queueJob(3);
    // The long-poll's head may come at once and its body when the job ends: read to the end.
    const waited = (await (await stack.request(`/v1/jobs/${id}?wait=10`)).json()) as {
      status: string;
    };
    expect(waited.status).toBe('completed');
    const events = await collect(sseEvents(`${base}/v1/jobs/${id}/events`));
    expect(events.map((e) => e.event)).toEqual(['status', 'result']);
    expect(events[0]!.data.status).toBe('completed');
    expect(events[1]!.data).toMatchObject({
      id,
      status: 'completed',
      result: { prediction: expect.any(Number) },
    });
  });

  it('ends with an error event carrying the code when the job fails', async () => {
    const { ref } = await stack.api.deps.jobs.submit({
      data: {
        model: 'breast-cancer',
        version: '1.1.0',
        rows: 1,
        values: [1, 2, 3],
        format: 'task',
        single: true,
        owner: 'anon',
      },
    });
    const jobId = await stack.idOf(ref);
    const events = await collect(sseEvents(`${base}/v1/jobs/${jobId}/events`));
    expect(events.at(-1)).toMatchObject({
      event: 'error',
      data: { code: 'validation_error', message: expect.stringMatching(/expected 30 values/) },
    });
    expect(events.slice(0, -1).every((e) => e.event === 'status')).toBe(true);
  });

  it('ends open streams with an unavailable error event when the server shuts down', async () => {
    const config = testConfig();
    const api = await buildApi(config, testLogger('api'));
    try {
      const port = await api.listen(0, '127.0.0.1');
      const res = await api.app.request('/v1/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'breast-cancer', features: uniqueRow(5) }),
      });
      const { id } = loose(await res.json());
      const events = sseEvents(`http://127.0.0.1:${port}/v1/jobs/${id}/events`);
      expect((await events.next()).value).toMatchObject({ data: { status: 'queued' } });
      const started = Date.now();
      const [rest] = await Promise.all([collect(events), api.close()]);
      expect(rest).toMatchObject([{ event: 'error', data: { code: 'unavailable' } }]);
      // Well under the 5 s keep-alive timeout an idle SSE connection would hold the server for.
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await api.close().catch(() => undefined);
      await removeKeys(config.QUEUE_PREFIX);
    }
  });
});
