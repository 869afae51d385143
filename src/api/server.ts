import { randomBytes } from 'node:crypto';
import { serve, type ServerType } from '@hono/node-server';
import { QueueEvents } from 'bullmq';
import type { Config } from '../shared/config.js';
import type { PredictJobData, PredictJobResult } from '../shared/jobs.js';
import { parseChunkJobId } from '../shared/batches.js';
import { BATCH_QUEUE, keysOf, PREDICT_QUEUE } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { ModelRepository } from '../shared/model-repository.js';
import { closeRedis, createRedis, topologyOf, waitForReady } from '../shared/redis.js';
import { replyChannel, subscribeChannel } from '../shared/replies.js';
import { chunkShard, shardPrefixes, ShardedQueue } from '../shared/shards.js';
import { createApp } from './app.js';
import type { ApiDeps } from './deps.js';
import { BatchService } from './batches/batch-service.js';
import { JobService } from './jobs/job-service.js';
import { FastLanes } from './jobs/fast-lanes.js';
import { OnlineGatherer } from './predict/request-gathering.js';
import { ApiMetrics } from './ops/api-metrics.js';
import { apiModelReloads } from './models/model-rescan.js';
import { IdSecret, jobShard } from './jobs/public-ids.js';
import { QueueDepth } from './ops/queue-depth.js';
import { ResultHub } from './jobs/results-hub.js';
import { mountLiveSocket } from './live/ws-route.js';
import { ShutdownGate } from './http/shutdown-gate.js';

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

async function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([
    work.then(
      () => undefined,
      () => undefined,
    ),
    timeout,
  ]);
  clearTimeout(timer);
}

/** Builds the API's connections and app from config (no listening yet). */
export async function buildApi(config: Config, logger: Logger): Promise<ApiHandle> {
  const repository = await ModelRepository.scan(
    config.MODEL_DIR,
    config.MODEL_VERSIONS_KEPT,
    logger,
  );
  const redis = createRedis({
    ...topologyOf(config),
    role: 'producer',
    name: 'inferq-api',
  });
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'));
  // BullMQ's queues get a connection of their own: BullMQ defines its ~50 scripts on the one it
  // is given, and ioredis copies every defined script onto each auto-pipeline it opens, which
  // made each cache read pay for BullMQ's scripts. `redis` serves the service's own commands.
  const queueRedis = createRedis({
    ...topologyOf(config),
    role: 'producer',
    name: 'inferq-api-queue',
  });
  queueRedis.on('error', (err: Error) =>
    logger.debug({ err: err.message }, 'queue connection error'),
  );
  // Start answering even while Redis is away (503s, health), but not before a reachable one is ready.
  await Promise.all([waitForReady(redis, 3000), waitForReady(queueRedis, 3000)]).catch(() =>
    logger.warn('redis not ready at start; answering 503 until it is'),
  );
  const keys = keysOf(config);
  // Each queue is cut into QUEUE_SHARDS shard queues; a job's id names its shard.
  const prefixes = shardPrefixes(config.QUEUE_PREFIX, config.QUEUE_SHARDS);
  const queue = new ShardedQueue<PredictJobData, PredictJobResult>(
    PREDICT_QUEUE,
    prefixes,
    { connection: queueRedis },
    jobShard,
  );
  queue.on('error', (err) => logger.warn({ err: err.message }, 'queue error'));
  // Workers reply to this replica alone, on its own channel (see shared/replies.ts).
  const replicaId = randomBytes(8).toString('hex');
  const hub = new ResultHub(queue, redis, logger);
  const replies = createRedis({
    ...topologyOf(config),
    role: 'blocking',
    name: 'inferq-api-replies',
    shardedSubscribers: true,
  });
  replies.on('error', (err: Error) => logger.debug({ err: err.message }, 'reply connection error'));
  // A reconnect may have lost replies: read every job still waited for.
  replies.on('ready', () => void hub.recheck());
  // ioredis subscribes again by itself after a reconnect; with Redis away at start, go on.
  await settleWithin(
    subscribeChannel(replies, replyChannel(config.QUEUE_PREFIX, replicaId), (text) =>
      hub.reply(text),
    ),
    3000,
  );
  // Batch chunks live in their own queue (see BATCH_QUEUE); their ends reach the same hub.
  const batchQueue = new ShardedQueue(
    BATCH_QUEUE,
    prefixes,
    { connection: queueRedis },
    (jobId) => {
      const chunk = parseChunkJobId(jobId);
      return chunk ? chunkShard(chunk.batchId, chunk.chunk, prefixes.length) : 0;
    },
  );
  batchQueue.on('error', (err) => logger.warn({ err: err.message }, 'batch queue error'));
  const batchEventsRedis = createRedis({
    ...topologyOf(config),
    role: 'blocking',
    name: 'inferq-api-batch-events',
  });
  batchEventsRedis.on('error', (err: Error) =>
    logger.debug({ err: err.message }, 'events connection error'),
  );
  const batchEvents = prefixes.map(
    (prefix) => new QueueEvents(BATCH_QUEUE, { connection: batchEventsRedis, prefix }),
  );
  for (const events of batchEvents) hub.attach(events);
  const depth = new QueueDepth(
    queue,
    config.MAX_QUEUE_DEPTH,
    logger,
    config.QUEUE_DEPTH_REFRESH_MS,
  );
  depth.start();
  const metrics = new ApiMetrics(queue, logger);
  metrics.watchBatchQueue(batchQueue, logger);
  const reloads = apiModelReloads(config, repository, logger);
  void reloads.start();
  const lanes = new FastLanes(config, queue.shards, redis);
  const gate = new ShutdownGate();
  const deps: ApiDeps = {
    config,
    logger,
    repository,
    redis,
    keys,
    queue,
    batchQueue,
    replicaId,
    jobs: new JobService(config, queue, redis, keys, hub, replicaId, lanes, {
      onCoalesced: () => metrics.coalesced.inc(),
      onCompleted: (result) => metrics.jobWaited(result.queueMs),
    }),
    batches: new BatchService(config, batchQueue, redis, keys, hub),
    depth,
    gather: new OnlineGatherer({ config, queue, redis, keys, hub, replicaId, lanes }),
    hub,
    ids: new IdSecret(config, redis, keys, logger),
    isShuttingDown: gate.isShuttingDown,
    metrics,
  };
  const app = createApp(deps);
  const live = mountLiveSocket(app, deps);
  let server: ServerType | undefined;
  return {
    deps,
    app,
    hub,
    listen: (port = config.PORT, host = config.HOST) =>
      new Promise((resolve) => {
        server = serve({ fetch: gate.wrap(app.fetch), port, hostname: host }, (info) =>
          resolve(info.port),
        );
        gate.watch(server);
        live.inject(server);
      }),
    close: async () => {
      gate.begin();
      depth.stop();
      lanes.close();
      await reloads.close();
      deps.batches.close();
      hub.releaseAll();
      live.closeAll();
      // Keep answering 503 + Connection: close on live sockets before the listener goes.
      if (server) await gate.drain(config.SHUTDOWN_DRAIN_MS);
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      // BullMQ's close waits for a connection that may never come while Redis is away.
      const reachable = redis.status === 'ready';
      await settleWithin(
        Promise.all([queue.close(), batchQueue.close(), ...batchEvents.map((e) => e.close())]),
        reachable ? 5000 : 200,
      );
      await Promise.all(
        [redis, queueRedis, replies, batchEventsRedis].map((connection) => closeRedis(connection)),
      );
    },
  };
}
