import type { Config } from '../../src/shared/config.js';
import { buildApi, type ApiHandle } from '../../src/api/server.js';
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
  /** Closes everything and removes the prefix's keys. */
  close(): Promise<void>;
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
