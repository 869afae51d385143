import { serve, type ServerType } from '@hono/node-server';
import { Queue, QueueEvents } from 'bullmq';
import type { Config } from '../shared/config.js';
import type { PredictJobData, PredictJobResult } from '../shared/jobs.js';
import { createKeys, PREDICT_QUEUE } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { ModelRepository } from '../shared/model-repository.js';
import { closeRedis, createRedis } from '../shared/redis.js';
import { createApp } from './app.js';
import type { ApiDeps } from './deps.js';
import { JobService } from './job-service.js';
import { QueueDepth } from './queue-depth.js';
import { ResultHub } from './results-hub.js';

/** A built API: its deps and app, before or after listening. */
export interface ApiHandle {
  deps: ApiDeps;
  app: ReturnType<typeof createApp>;
  hub: ResultHub;
  /** Starts the HTTP listener; resolves with the bound port. */
  listen(port?: number, host?: string): Promise<number>;
  /** Stops taking work, answers waiting requests, closes connections. */
  close(): Promise<void>;
}

/** Builds the API's connections and app from config (no listening yet). */
export async function buildApi(config: Config, logger: Logger): Promise<ApiHandle> {
  const repository = await ModelRepository.scan(
    config.MODEL_DIR,
    config.MODEL_VERSIONS_KEPT,
    logger,
  );
  const redis = createRedis({ url: config.REDIS_URL, role: 'producer', name: 'inferq-api' });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  const keys = createKeys(config.QUEUE_PREFIX);
  const queue = new Queue<PredictJobData, PredictJobResult>(PREDICT_QUEUE, {
    connection: redis,
    prefix: config.QUEUE_PREFIX,
  });
  queue.on('error', (err) => logger.warn({ err: err.message }, 'queue error'));
  // One blocking connection per process carries every waiter's completion event.
  const eventsRedis = createRedis({
    url: config.REDIS_URL,
    role: 'blocking',
    name: 'inferq-api-events',
  });
  eventsRedis.on('error', (err) => logger.debug({ err: err.message }, 'events connection error'));
  const events = new QueueEvents(PREDICT_QUEUE, {
    connection: eventsRedis,
    prefix: config.QUEUE_PREFIX,
  });
  const hub = new ResultHub(queue, redis, events, logger);
  const depth = new QueueDepth(queue, config.MAX_QUEUE_DEPTH, logger);
  depth.start();
  let shuttingDown = false;
  const deps: ApiDeps = {
    config,
    logger,
    repository,
    redis,
    keys,
    queue,
    jobs: new JobService(config, queue, redis, keys, hub),
    depth,
    isShuttingDown: () => shuttingDown,
  };
  const app = createApp(deps);
  let server: ServerType | undefined;
  return {
    deps,
    app,
    hub,
    listen: (port = config.PORT, host = config.HOST) =>
      new Promise((resolve) => {
        server = serve({ fetch: app.fetch, port, hostname: host }, (info) => resolve(info.port));
      }),
    close: async () => {
      shuttingDown = true;
      depth.stop();
      const closed = server
        ? new Promise<void>((r) => server?.close(() => r()))
        : Promise.resolve();
      hub.releaseAll();
      await closed;
      await events.close();
      await queue.close();
      await Promise.all([closeRedis(redis), closeRedis(eventsRedis)]);
    },
  };
}
