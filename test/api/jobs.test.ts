import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

interface Accepted {
  id: string;
  status: string;
  links: { self: string };
}

interface JobView {
  id: string;
  status: string;
  model: string;
  version: string;
  attempts: number;
  createdAt: string;
  finishedAt?: string;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

interface ErrorResponse {
  error: { code: string; message: string; details?: { path?: string; message: string }[] };
}

describe('/v1/jobs', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack({ worker: false });
  });

  afterAll(async () => {
    await stack.close();
  });

  async function submit(body: unknown, headers: Record<string, string> = {}): Promise<Accepted> {
    const res = await stack.post('/v1/jobs', body, headers);
    expect(res.status).toBe(202);
    return (await res.json()) as Accepted;
  }

  async function view(
    id: string,
    init?: RequestInit,
    query = '',
  ): Promise<{ status: number; body: JobView }> {
    const res = await stack.request(`/v1/jobs/${id}${query}`, init);
    return { status: res.status, body: (await res.json()) as JobView };
  }

  async function waitingJobs(): Promise<number> {
    const counts = await stack.api.deps.queue.getJobCounts('waiting', 'prioritized');
    return (counts.waiting ?? 0) + (counts.prioritized ?? 0);
  }

  describe('with no worker running', () => {
    it('accepts a job with 202, its id, status, links, Location and Retry-After', async () => {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        features: BREAST_CANCER_ROW,
      });
      expect(res.status).toBe(202);
      const body = (await res.json()) as Accepted;
      expect(body.id).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(body).toEqual({
        id: body.id,
        status: 'queued',
        links: { self: `/v1/jobs/${body.id}` },
      });
      expect(res.headers.get('location')).toBe(`/v1/jobs/${body.id}`);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(res.headers.get('x-request-id')).toBeTruthy();
    });

    it('keeps the job waiting in the queue and reports it queued on the default version', async () => {
      const before = await waitingJobs();
      const { id } = await submit({ model: 'breast-cancer', features: uniqueRow(1) });
      expect(await waitingJobs()).toBe(before + 1);
      const { status, body } = await view(id);
      expect(status).toBe(200);
      expect(body).toMatchObject({
        id,
        status: 'queued',
        model: 'breast-cancer',
        version: '1.1.0',
        attempts: 0,
      });
      expect(new Date(body.createdAt).toISOString()).toBe(body.createdAt);
      expect(Math.abs(Date.parse(body.createdAt) - Date.now())).toBeLessThan(60_000);
      expect(body).not.toHaveProperty('result');
      expect(body).not.toHaveProperty('finishedAt');
    });

    it('queues a job for the version and priority asked', async () => {
      const { id } = await submit({
        model: 'breast-cancer',
        version: '1.0.0',
        priority: 3,
        features: uniqueRow(2),
      });
      const { body } = await view(id);
      expect(body).toMatchObject({ status: 'queued', version: '1.0.0' });
      const job = await stack.api.deps.queue.getJob((await stack.refOf(id)).jobId);
      expect(job?.opts.priority).toBe(3);
    });

    it('cancels a queued job with 204; the job then reads as cancelled and cannot be cancelled again', async () => {
      const { id } = await submit({ model: 'breast-cancer', features: uniqueRow(3) });
      const before = await waitingJobs();
      const del = await stack.request(`/v1/jobs/${id}`, { method: 'DELETE' });
      expect(del.status).toBe(204);
      expect(await del.text()).toBe('');
      expect(await waitingJobs()).toBe(before - 1);
      const { status, body } = await view(id);
      expect(status).toBe(200);
      expect(body).toMatchObject({ id, status: 'cancelled', model: 'breast-cancer' });
      expect(body.finishedAt).toBeDefined();
      const again = await stack.request(`/v1/jobs/${id}`, { method: 'DELETE' });
      expect(again.status).toBe(409);
      expect(((await again.json()) as ErrorResponse).error.code).toBe('job_not_cancellable');
    });

    it('returns the first job for a second POST with the same Idempotency-Key, queuing only one', async () => {
      const before = await waitingJobs();
      const headers = { 'idempotency-key': `order-${Date.now()}` };
      const first = await submit({ model: 'breast-cancer', features: uniqueRow(4) }, headers);
      const second = await submit({ model: 'breast-cancer', features: uniqueRow(4) }, headers);
      expect(second.id).toBe(first.id);
      expect(await waitingJobs()).toBe(before + 1);
      const other = await submit(
        { model: 'breast-cancer', features: uniqueRow(4) },
        { 'idempotency-key': 'another-key' },
      );
      expect(other.id).not.toBe(first.id);
    });

    it('answers a long-poll with the current status after N seconds when the job does not end', async () => {
      const { id } = await submit({ model: 'breast-cancer', features: uniqueRow(5) });
      const started = Date.now();
      const { status, body } = await view(id, undefined, '?wait=1');
      const elapsed = Date.now() - started;
      expect(status).toBe(200);
      expect(body.status).toBe('queued');
      expect(elapsed).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(3000);
    });

    it.each([0, 11, 2.5])('rejects priority %s with 422 naming priority', async (priority) => {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        priority,
        features: BREAST_CANCER_ROW,
      });
      expect(res.status).toBe(422);
      const body = (await res.json()) as ErrorResponse;
      expect(body.error.code).toBe('validation_error');
      expect(body.error.details?.map((d) => d.path)).toContain('priority');
    });

    it('rejects a body without a model with 422 naming model', async () => {
      const res = await stack.post('/v1/jobs', { features: BREAST_CANCER_ROW });
      expect(res.status).toBe(422);
      const body = (await res.json()) as ErrorResponse;
      expect(body.error.code).toBe('validation_error');
      expect(body.error.details?.map((d) => d.path)).toContain('model');
    });

    it('rejects 29 features with 422 naming the expected 30', async () => {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        features: BREAST_CANCER_ROW.slice(1),
      });
      expect(res.status).toBe(422);
      const body = (await res.json()) as ErrorResponse;
      expect(body.error.code).toBe('validation_error');
      expect(body.error.message).toContain('expected 30 features, got 29');
    });

    it('rejects an empty Idempotency-Key and a wait that is not a number with 422 naming them', async () => {
      const res = await stack.post(
        '/v1/jobs',
        { model: 'breast-cancer', features: uniqueRow(60) },
        { 'idempotency-key': '' },
      );
      expect(res.status).toBe(422);
      const body = (await res.json()) as ErrorResponse;
      expect(body.error.code).toBe('validation_error');
      expect(JSON.stringify(body.error)).toMatch(/idempotency-key/i);
      const { id } = await submit({ model: 'breast-cancer', features: uniqueRow(61) });
      const soon = await stack.request(`/v1/jobs/${id}?wait=soon`);
      expect(soon.status).toBe(422);
      expect(JSON.stringify(await soon.json())).toMatch(/wait/);
    });

    it('answers an unknown model with 404 model_not_found', async () => {
      const res = await stack.post('/v1/jobs', {
        model: 'no-such-model',
        features: BREAST_CANCER_ROW,
      });
      expect(res.status).toBe(404);
      expect(((await res.json()) as ErrorResponse).error.code).toBe('model_not_found');
    });

    it('answers an unknown version with 404 version_not_found', async () => {
      const res = await stack.post('/v1/jobs', {
        model: 'breast-cancer',
        version: '9.9.9',
        features: BREAST_CANCER_ROW,
      });
      expect(res.status).toBe(404);
      expect(((await res.json()) as ErrorResponse).error.code).toBe('version_not_found');
    });

    it('answers an unknown job id with 404 job_not_found, for GET and DELETE', async () => {
      const get = await stack.request('/v1/jobs/00000000-0000-4000-8000-000000000000');
      expect(get.status).toBe(404);
      expect(((await get.json()) as ErrorResponse).error.code).toBe('job_not_found');
      const del = await stack.request('/v1/jobs/no-such-job', { method: 'DELETE' });
      expect(del.status).toBe(404);
      expect(((await del.json()) as ErrorResponse).error.code).toBe('job_not_found');
    });
  });

  describe('once a worker runs', () => {
    let cancelledId: string;

    it('long-polls with Prefer: wait=5 and ?wait=5, answering as soon as the job completes', async () => {
      const { id } = await submit({ model: 'breast-cancer', features: BREAST_CANCER_ROW });
      const cancelled = await submit({ model: 'breast-cancer', features: uniqueRow(6) });
      cancelledId = cancelled.id;
      expect((await stack.request(`/v1/jobs/${cancelledId}`, { method: 'DELETE' })).status).toBe(
        204,
      );

      const answeredAt: number[] = [];
      const polls = [
        view(id, { headers: { prefer: 'wait=5' } }).then((r) => (answeredAt.push(Date.now()), r)),
        view(id, undefined, '?wait=5').then((r) => (answeredAt.push(Date.now()), r)),
      ];
      await new Promise((r) => setTimeout(r, 300));
      expect(answeredAt).toHaveLength(0);

      const worker = await stack.startWorker();
      const results = await Promise.all(polls);
      const job = await stack.api.deps.queue.getJob((await stack.refOf(id)).jobId);
      const finishedOn = job?.finishedOn ?? NaN;
      for (const [i, { status, body }] of results.entries()) {
        expect(status).toBe(200);
        expect(body).toMatchObject({
          id,
          status: 'completed',
          model: 'breast-cancer',
          version: '1.1.0',
          attempts: 1,
        });
        // The worker's own end time, a moment before BullMQ records finishedOn.
        expect(Math.abs(Date.parse(String(body.finishedAt)) - Number(finishedOn))).toBeLessThan(
          1000,
        );
        expect(body.result).toEqual({
          prediction: expect.any(Number),
          label: expect.stringMatching(/^(malignant|benign)$/),
          confidence: expect.any(Number),
          probabilities: [expect.any(Number), expect.any(Number)],
        });
        // The predict body without its envelope.
        expect(body.result).not.toHaveProperty('cached');
        expect(body.result).not.toHaveProperty('model');
        expect((answeredAt[i] ?? Infinity) - finishedOn).toBeLessThan(250);
      }
      expect(worker.batchSizes.length).toBeGreaterThan(0);
    });

    it('never runs a job cancelled before the worker started', async () => {
      await new Promise((r) => setTimeout(r, 200));
      const { status, body } = await view(cancelledId);
      expect(status).toBe(200);
      expect(body.status).toBe('cancelled');
      expect(body).not.toHaveProperty('result');
    });

    it('completes a new job with several instances and reports their predictions in order', async () => {
      const instances = [BREAST_CANCER_ROW, uniqueRow(7), uniqueRow(8)];
      const { id } = await submit({ model: 'breast-cancer', version: '1.0.0', instances });
      const { body } = await view(id, { headers: { prefer: 'wait=5' } });
      expect(body.status).toBe('completed');
      const predictions = (body.result as { predictions: { prediction: number; label: string }[] })
        .predictions;
      expect(predictions).toHaveLength(3);
      // The held-out first row is a malignant tumour for both versions.
      expect(predictions[0]).toMatchObject({ prediction: 0, label: 'malignant' });
    });

    it('answers DELETE of a completed job with 409 job_not_cancellable', async () => {
      const { id } = await submit({ model: 'breast-cancer', features: uniqueRow(9) });
      expect((await view(id, undefined, '?wait=5')).body.status).toBe('completed');
      const res = await stack.request(`/v1/jobs/${id}`, { method: 'DELETE' });
      expect(res.status).toBe(409);
      const body = (await res.json()) as ErrorResponse;
      expect(body.error.code).toBe('job_not_cancellable');
      expect((await view(id)).body.status).toBe('completed');
    });

    it('queues a plain job on the fast lane once a worker consumes it, and a prioritized one through BullMQ', async () => {
      const laneOf = async (id: string) =>
        stack.api.deps.redis.hget(
          stack.api.deps.queue.toKey((await stack.refOf(id)).jobId),
          'lane',
        );
      // The API reads which lanes have a consumer every second.
      let plain = await submit({ model: 'breast-cancer', features: uniqueRow(11) });
      for (let i = 0; i < 30 && (await laneOf(plain.id)) !== 'fast'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        plain = await submit({ model: 'breast-cancer', features: uniqueRow(12 + i) });
      }
      expect(await laneOf(plain.id)).toBe('fast');
      const prioritized = await submit({
        model: 'breast-cancer',
        features: uniqueRow(50),
        priority: 1,
      });
      expect(await laneOf(prioritized.id)).toBeNull();
      for (const { id } of [plain, prioritized]) {
        const { body } = await view(id, undefined, '?wait=5');
        expect(body).toMatchObject({ id, status: 'completed', attempts: 1 });
        expect(body.result).toMatchObject({ label: expect.stringMatching(/^(malignant|benign)$/) });
      }
    });

    it('answers a long-poll of a finished job at once', async () => {
      const { id } = await submit({ model: 'breast-cancer', features: uniqueRow(10) });
      await view(id, undefined, '?wait=5');
      const started = Date.now();
      const { body } = await view(id, { headers: { prefer: 'wait=5' } });
      expect(body.status).toBe('completed');
      expect(Date.now() - started).toBeLessThan(500);
    });
  });
});
