import type { Config } from '../../src/shared/config.js';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
import { ANONYMOUS, type JobRef } from '../../src/api/jobs/public-ids.js';
import { digestOf } from '../../src/shared/secrets.js';
import { startWorker, type WorkerHandle } from '../../src/worker/worker.js';
import { removeKeys, testConfig, testLogger } from './env.js';

/** An in-process API (and optionally a worker) on a private prefix of the real Redis. */
export interface TestStack {
  config: Config;
  api: ApiHandle;
  worker?: WorkerHandle;
  /** Sends a request to the app in-process. */
  request(path: string, init?: RequestInit): Promise<Response>;
  /** POSTs a JSON body. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Starts a worker if none runs. */
  startWorker(): Promise<WorkerHandle>;
  /** The queue job behind a public id made for `apiKey` (anonymous by default). */
  refOf(id: string, apiKey?: string): Promise<JobRef>;
  /** The public id of a queue job for `apiKey` (anonymous by default). */
  idOf(ref: JobRef, apiKey?: string): Promise<string>;
  /** Closes everything and removes the prefix's keys. */
  close(): Promise<void>;
}

/** The owner an API key stands for (its SHA-256), or the anonymous one. */
export function ownerFor(apiKey?: string): string {
  return apiKey === undefined ? ANONYMOUS : digestOf(apiKey).toString('hex');
}

/** Builds a stack; `worker: false` leaves the queue without a consumer. */
export async function createStack(
  options: { worker?: boolean; env?: Record<string, string> } = {},
): Promise<TestStack> {
  const config = testConfig(options.env);
  const api = await buildApi(config, testLogger('api'));
  const stack: TestStack = {
    config,
    api,
    request: async (path, init) => api.app.request(path, init),
    post: async (path, body, headers = {}) =>
      api.app.request(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    refOf: async (id, apiKey) => {
      const ref = (await api.deps.ids.ids()).decode(ownerFor(apiKey), id);
      if (!ref) throw new Error(`${id} is not a job id of this owner`);
      return ref;
    },
    idOf: async (ref, apiKey) => (await api.deps.ids.ids()).encode(ownerFor(apiKey), ref),
    startWorker: async () => {
      stack.worker ??= await startWorker({ config, logger: testLogger('worker') });
      return stack.worker;
    },
    close: async () => {
      await stack.worker?.close();
      await api.close();
      await removeKeys(config.QUEUE_PREFIX);
    },
  };
  if (options.worker !== false) await stack.startWorker();
  return stack;
}
