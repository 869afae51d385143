import { Worker } from 'bullmq';
import type { Config } from '../shared/config.js';
import type { PredictJobData, PredictJobResult } from '../shared/jobs.js';
import { PREDICT_QUEUE } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { ModelRepository, type ModelVersion } from '../shared/model-repository.js';
import { closeRedis, createRedis } from '../shared/redis.js';
import { CacheWriter } from './cache-writer.js';
import { ModelPool } from './model-pool.js';
import { createProcessor } from './processor.js';
import { InferenceThread } from './sessions.js';

/** A running worker process's parts. */
export interface WorkerHandle {
  worker: Worker<PredictJobData, PredictJobResult>;
  pool: ModelPool;
  /** Sizes of every inference batch run so far (for tests and metrics). */
  batchSizes: number[];
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
  const pool = new ModelPool({
    thread,
    logger,
    maxBatchSize: config.MAX_BATCH_SIZE,
    maxBatchDelayMs: config.MAX_BATCH_DELAY_MS,
    onBatch: (model, rows, ms) => {
      if (batchSizes.length < 100_000) batchSizes.push(rows);
      onBatch?.(model, rows, ms);
    },
  });
  await pool.loadAll(repository);
  const redis = createRedis({ url: config.REDIS_URL, role: 'blocking', name: 'inferq-worker' });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  const cache = config.CACHE_TTL_S > 0 ? new CacheWriter(redis, config.CACHE_TTL_S) : undefined;
  const worker = new Worker<PredictJobData, PredictJobResult>(
    PREDICT_QUEUE,
    createProcessor({ pool, cache, logger }),
    {
      connection: redis,
      prefix: config.QUEUE_PREFIX,
      concurrency: config.WORKER_CONCURRENCY,
      autorun: true,
    },
  );
  worker.on('error', (err) => logger.warn({ err: err.message }, 'worker error'));
  worker.on('failed', (job, err) => {
    logger.warn(
      { jobId: job?.id, attemptsMade: job?.attemptsMade, reason: err.message },
      'job failed',
    );
  });
  logger.info({ models: pool.keys(), concurrency: config.WORKER_CONCURRENCY }, 'worker started');
  return {
    worker,
    pool,
    batchSizes,
    close: async () => {
      await worker.close();
      await thread.close();
      await closeRedis(redis);
    },
  };
}
