import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { PREDICT_JOB, type PredictJobData } from '../../src/shared/jobs.js';
import { createLogger } from '../../src/shared/logger.js';
import { startWorker, type WorkerHandle } from '../../src/worker/worker.js';
import { eventually, removeKeys, testConfig } from '../helpers/env.js';

const API_KEY = 'very-secret-api-key-4711';
const WRONG_KEY = 'wrong-key-0815-guess';
const ADMIN = 'admin-token-never-logged';
// Feature values no log line may carry (distinctive digits make a leak easy to spot).
const ROW = Array.from({ length: 30 }, (_, i) => 731.0917 + i);
const LEAKS = [API_KEY, WRONG_KEY, ADMIN, '731.09', '732.09', '7310917'];

const lines: string[] = [];
const capture = { write: (chunk: string) => void lines.push(chunk) };
let api: ApiHandle;
let worker: WorkerHandle;

const logged = () => lines.flatMap((l) => l.split('\n')).filter((l) => l.trim() !== '');
const records = () => logged().map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  const config = testConfig({
    API_KEYS: API_KEY,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: 'debug',
    JOB_ATTEMPTS: '1',
  });
  // Debug level: the most any line could give away.
  api = await buildApi(
    config,
    createLogger({ service: 'api', level: 'debug', destination: capture }),
  );
  worker = await startWorker({
    config,
    logger: createLogger({ service: 'worker', level: 'debug', destination: capture }),
  });
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await removeKeys(api.deps.config.QUEUE_PREFIX);
});

const auth = { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` };

describe('logs', () => {
  it('writes one info line per request with method, route, status, duration and request id', async () => {
    const res = await api.app.request('/v1/models/breast-cancer/predict', {
      method: 'POST',
      headers: { ...auth, 'x-request-id': 'req-log-test-1' },
      body: JSON.stringify({ features: ROW }),
    });
    expect(res.status).toBe(200);
    const line = records().find((r) => r.msg === 'request' && r.requestId === 'req-log-test-1');
    expect(line).toMatchObject({
      level: 30,
      service: 'api',
      method: 'POST',
      route: '/v1/models/:model/predict',
      path: '/v1/models/breast-cancer/predict',
      status: 200,
    });
    expect(typeof line?.ms).toBe('number');
  });

  it('puts the job id on every worker line about a job', async () => {
    const bad: PredictJobData = {
      model: 'breast-cancer',
      version: '1.1.0',
      rows: 1,
      values: ROW.slice(0, 3),
      format: 'task',
      single: true,
    };
    const job = await api.deps.queue.add(PREDICT_JOB, bad, { attempts: 1 });
    await eventually(async () => (await job.getState()) === 'failed');
    await eventually(() => records().some((r) => r.msg === 'job failed' && r.jobId === job.id));
    const aboutJobs = records().filter(
      (r) => r.service === 'worker' && /^job /.test(String(r.msg)),
    );
    expect(aboutJobs.map((r) => r.msg)).toEqual(
      expect.arrayContaining(['job completed', 'job failed']),
    );
    for (const r of aboutJobs) expect(typeof r.jobId, JSON.stringify(r)).toBe('string');
  });

  it('never writes feature values, API keys or tokens', async () => {
    const post = (path: string, body: unknown, headers: Record<string, string>) =>
      api.app.request(path, { method: 'POST', headers, body: JSON.stringify(body) });
    const wrong = { 'content-type': 'application/json', 'x-api-key': WRONG_KEY };
    expect((await post('/v1/jobs', { model: 'breast-cancer', features: ROW }, wrong)).status).toBe(
      401,
    );
    expect(
      (await post('/v1/jobs', { model: 'breast-cancer', features: ROW.slice(1) }, auth)).status,
    ).toBe(422);
    expect((await post('/v1/jobs', { model: 'breast-cancer', features: ROW }, auth)).status).toBe(
      202,
    );
    const admin = await api.app.request('/admin/queues', {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(admin.status).toBe(200);
    await api.app.request(`/v1/ws?access_token=${API_KEY}`);
    await eventually(() => logged().length > 5);
    const text = logged().join('\n');
    for (const secret of LEAKS) expect(text, secret).not.toContain(secret);
  });
});
