import { hostname } from 'node:os';
import { Worker, type Job } from 'bullmq';
import { parseShardList, type Config } from '../shared/config.js';
import { PREDICT_JOB, type PredictJobData, type PredictJobResult } from '../shared/jobs.js';
import { BATCH_QUEUE, PREDICT_QUEUE } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { ModelRepository, type ModelVersion } from '../shared/model-repository.js';
import { parseFailure } from '../shared/errors.js';
import { closeRedis, createRedis, topologyOf } from '../shared/redis.js';
import { replyChannel, type ReplyMessage } from '../shared/replies.js';
import { shardPrefixes } from '../shared/shards.js';
import { createBatchProcessor } from './chunks/chunk-processor.js';
import type { BatchChunkJobData, BatchChunkResult } from '../shared/batches.js';
import { CacheWriter } from './online/cache-writer.js';
import { WorkerMetrics } from './ops/worker-metrics.js';
import { ModelPool } from './inference/model-pool.js';
import { createWorkerOps, type WorkerOps } from './ops/worker-ops.js';
import { createProcessor } from './online/online-processor.js';
import { FastConsumer } from './online/fast-consumer.js';
import { keepLocks, LockKeeper } from './locks/lock-keeper.js';
import { InferenceThread } from './inference/sessions.js';

/** A running worker process's parts. */
export interface WorkerHandle {
  /** The online worker of the first shard this process consumes. */
  worker: Worker<PredictJobData, PredictJobResult>;
  /** One online worker per shard this process consumes (WORKER_SHARDS, default all). */
  workers: Worker<PredictJobData, PredictJobResult>[];
  pool: ModelPool;
  /** Sizes of every inference batch run so far (for tests and metrics). */
  batchSizes: number[];
  /** Prometheus metrics of this worker. */
  metrics: WorkerMetrics;
  /** Hot model reloads and the metrics endpoint. */
  ops: WorkerOps;
  /** Lets active jobs finish, then closes everything. */
  close(): Promise<void>;
}

/** Options of startWorker. */
export interface StartWorkerOptions {
  config: Config;
  logger: Logger;
  /** Called after every inference run. */
  onBatch?: (model: ModelVersion, rows: number, ms: number) => void;
}

/**
 * BullMQ lock and stalled-job options of both Workers. A killed worker's jobs go back to the
 * queue once their lock lapses and the next stalled check runs (at most WORKER_LOCK_MS +
 * WORKER_STALLED_INTERVAL_MS after the kill). Locks are renewed by a LockKeeper thread, not by
 * BullMQ on the event loop, which a saturated CPU can hold up for longer than the lock.
 */
export function lockOptions(config: Config) {
  return {
    lockDuration: config.WORKER_LOCK_MS,
    skipLockRenewal: true,
    stalledInterval: config.WORKER_STALLED_INTERVAL_MS,
    maxStalledCount: config.WORKER_MAX_STALLED_COUNT,
  };
}

/** What the online workers' event handlers report to. */
interface OnlineWatch {
  metrics: WorkerMetrics;
  cache: CacheWriter;
  replyTo: (replicaId: string) => string;
  logger: Logger;
}

/** Metrics and log line of an online job that completed (through BullMQ or the fast lane). */
function onlineCompleted(
  job: Pick<Job<PredictJobData>, 'id' | 'data' | 'processedOn' | 'timestamp'> & { name?: string },
  { metrics, logger }: Pick<OnlineWatch, 'metrics' | 'logger'>,
): void {
  metrics.completed(job);
  // The line carries ids and sizes, never the job's values.
  logger.debug(
    {
      jobId: job.id,
      job: job.name ?? PREDICT_JOB,
      model: job.data.model,
      version: job.data.version,
    },
    'job completed',
  );
}

/** Metrics, logs and final-failure replies of one online worker. */
function watchOnline(
  worker: Worker<PredictJobData, PredictJobResult>,
  { metrics, cache, replyTo, logger }: OnlineWatch,
): void {
  worker.on('error', (err) => logger.warn({ err: err.message }, 'worker error'));
  worker.on('completed', (job) => onlineCompleted(job, { metrics, logger }));
  worker.on('failed', (job, err) => {
    if (job) metrics.failed(job);
    // The last failure of a job is news for the replica that waits for it (a retry is not).
    const final =
      err.name === 'UnrecoverableError' || (job?.attemptsMade ?? 0) >= (job?.opts.attempts ?? 1);
    if (job?.data.replyTo && final) {
      const message: ReplyMessage = {
        jobId: job.id ?? '',
        state: 'failed',
        failure: parseFailure(err.message),
      };
      void cache.send(replyTo(job.data.replyTo), JSON.stringify(message)).catch(() => undefined);
    }
    logger.warn(
      { jobId: job?.id, attemptsMade: job?.attemptsMade, reason: err.message },
      'job failed',
    );
  });
}

/** Loads the models, then starts consuming the prediction queue. */
export async function startWorker({
  config,
  logger,
  onBatch,
}: StartWorkerOptions): Promise<WorkerHandle> {
  const repository = await ModelRepository.scan(
    config.MODEL_DIR,
    config.MODEL_VERSIONS_KEPT,
    logger,
  );
  const thread = new InferenceThread({ intraOpThreads: config.INTRA_OP_THREADS, logger });
  const batchSizes: number[] = [];
  const metrics = new WorkerMetrics(() => pool.keys());
  const pool = new ModelPool({
    thread,
    logger,
    maxBatchSize: config.MAX_BATCH_SIZE,
    maxBatchDelayMs: config.MAX_BATCH_DELAY_MS,
    inlineRows: config.INLINE_INFERENCE_ROWS,
    onBatch: (model, rows, ms) => {
      if (batchSizes.length < 100_000) batchSizes.push(rows);
      metrics.batch(model, rows, ms);
      onBatch?.(model, rows, ms);
    },
  });
  await pool.loadAll(repository);
  const ops = createWorkerOps({ config, logger, repository, pool, metrics });
  const redis = createRedis({
    ...topologyOf(config),
    role: 'blocking',
    name: 'inferq-worker',
  });
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'));
  // BullMQ defines its scripts (about 50) on the connection its workers are given, and ioredis
  // copies them onto every pipeline opened on that connection: 5% of the worker's CPU under
  // misses @64. The fast lanes, the cache writes and the batch chunks use a connection of their own.
  const commands = createRedis({
    ...topologyOf(config),
    role: 'blocking',
    name: 'inferq-worker-commands',
  });
  commands.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'));
  // Cache entries (when CACHE_TTL_S > 0) and replies to the waiting API replica, one pipeline.
  const cache = new CacheWriter(commands, config.CACHE_TTL_S);
  const replyTo = (replicaId: string) => replyChannel(config.QUEUE_PREFIX, replicaId);
  const locks = new LockKeeper({ config, logger });
  const name = config.WORKER_NAME || `${hostname()}-${process.pid}`;
  const prefixes = shardPrefixes(config.QUEUE_PREFIX, config.QUEUE_SHARDS);
  const listed = parseShardList(config.WORKER_SHARDS);
  const mine = listed.length > 0 ? listed : prefixes.map((_, i) => i);
  // The process's concurrency is shared out over the shards it consumes.
  const perShard = (total: number) => Math.max(1, Math.ceil(total / mine.length));
  const processor = createProcessor({
    pool,
    cache,
    replyChannel: replyTo,
    logger,
    onMissingModel: (since) => ops.onMissingModel(since),
  });
  const chunkProcessor = createBatchProcessor({ pool, redis: commands, config, logger });
  const workers: Worker<PredictJobData, PredictJobResult>[] = [];
  const chunkWorkers: Worker<BatchChunkJobData, BatchChunkResult>[] = [];
  const fastConsumers: FastConsumer[] = [];
  const backlogError = (err: unknown) =>
    logger.warn({ err }, 'prediction worker: holding back for the lane failed');
  for (const shard of mine) {
    const prefix = prefixes[shard] ?? config.QUEUE_PREFIX;
    const predictKey = `${prefix}:${PREDICT_QUEUE}:`;
    const batchKey = `${prefix}:${BATCH_QUEUE}:`;
    const worker = new Worker<PredictJobData, PredictJobResult>(
      PREDICT_QUEUE,
      locks.processor(predictKey, (job: Job<PredictJobData, PredictJobResult>) => processor(job)),
      {
        connection: redis,
        prefix,
        concurrency: perShard(config.WORKER_CONCURRENCY),
        // With the lane on, it runs once the lane's consumer has looked at `wait` (see below).
        autorun: !config.ONLINE_FAST_LANE,
        name,
        ...lockOptions(config),
      },
    );
    watchOnline(worker, { metrics, cache, replyTo, logger });
    keepLocks(worker, locks, predictKey, logger);
    workers.push(worker);
    const chunks = new Worker<BatchChunkJobData, BatchChunkResult>(
      BATCH_QUEUE,
      locks.processor(batchKey, chunkProcessor),
      {
        connection: redis,
        prefix,
        concurrency: perShard(config.BATCH_WORKER_CONCURRENCY),
        name,
        ...lockOptions(config),
      },
    );
    chunks.on('error', (err) => logger.warn({ err: err.message }, 'batch worker error'));
    keepLocks(chunks, locks, batchKey, logger);
    chunks.on('failed', (job, err) =>
      logger.warn(
        { jobId: job?.id, attemptsMade: job?.attemptsMade, reason: err.message },
        'batch chunk failed',
      ),
    );
    chunkWorkers.push(chunks);
    if (config.ONLINE_FAST_LANE) {
      fastConsumers.push(
        new FastConsumer({
          queueKey: `${prefix}:${PREDICT_QUEUE}:`,
          redis: commands,
          connect: () =>
            createRedis({ ...topologyOf(config), role: 'blocking', name: 'inferq-worker-fast' }),
          concurrency: perShard(config.WORKER_CONCURRENCY),
          lockMs: config.WORKER_LOCK_MS,
          sweepMs: config.WORKER_STALLED_INTERVAL_MS,
          keep: { ageMs: config.RESULT_TTL_S * 1000, count: config.RESULT_MAX_JOBS },
          // Off a Cluster, the cache entries and the reply leave in the pipeline that ends the job.
          hold:
            config.REDIS_CLUSTER_NODES.length === 0 ? { cacheTtlS: config.CACHE_TTL_S } : undefined,
          locks,
          run: processor,
          onCompleted: (job) => onlineCompleted(job, { metrics, logger }),
          backlogPeer: {
            hold: () => void worker.pause(true).catch((err: unknown) => backlogError(err)),
            release: () => void worker.resume().catch((err: unknown) => backlogError(err)),
          },
          logger,
          name,
        }),
      );
    }
  }
  // Both BullMQ connections up: the worker is consuming and counted by getWorkersCount (readiness).
  await Promise.all([...workers, ...chunkWorkers].map((w) => w.waitUntilReady()));
  await Promise.all(fastConsumers.map((c) => c.start()));
  // Started after the lane's consumers took their first look at `wait`: a backlog found there
  // holds BullMQ's worker back (FastConsumer.backlogPeer) before it takes any of it.
  if (config.ONLINE_FAST_LANE) {
    for (const worker of workers) {
      worker.run().catch((err: unknown) => logger.warn({ err }, 'prediction worker stopped'));
    }
  }
  await ops.start();
  logger.info(
    { models: pool.keys(), concurrency: config.WORKER_CONCURRENCY, shards: mine },
    'worker started',
  );
  return {
    worker: workers[0] as Worker<PredictJobData, PredictJobResult>,
    workers,
    pool,
    batchSizes,
    metrics,
    ops,
    close: async () => {
      // The fast lanes first: they stop taking jobs at once, the rest stay for other workers.
      await Promise.all(fastConsumers.map((c) => c.close()));
      await ops.close();
      await Promise.all([...workers, ...chunkWorkers].map((w) => w.close()));
      await locks.close();
      await thread.close();
      await Promise.all([closeRedis(redis), closeRedis(commands)]);
    },
  };
}
