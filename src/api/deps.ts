import { ApiError } from '../shared/errors.js';
import type { RedisClient } from '../shared/redis.js';
import type { Config } from '../shared/config.js';
import type { PredictJobData, PredictJobResult } from '../shared/jobs.js';
import type { Keys } from '../shared/keys.js';
import type { ShardedQueue } from '../shared/shards.js';
import type { Logger } from '../shared/logger.js';
import type { ModelRepository } from '../shared/model-repository.js';
import type { BatchService } from './batches/batch-service.js';
import type { JobService } from './jobs/job-service.js';
import type { ApiMetrics } from './ops/api-metrics.js';
import type { OnlineGatherer } from './predict/request-gathering.js';
import type { IdSecret } from './jobs/public-ids.js';
import type { QueueDepth } from './ops/queue-depth.js';
import type { ResultHub } from './jobs/results-hub.js';
import type { Frame } from './http/request-frame.js';

/** Everything the routes need, built by main.ts (or a test) and passed to createApp. */
export interface ApiDeps {
  config: Config;
  logger: Logger;
  repository: ModelRepository;
  /** Producer connection: fails fast while Redis is away. */
  redis: RedisClient;
  keys: Keys;
  /** The prediction queue, cut into QUEUE_SHARDS shard queues. */
  queue: ShardedQueue<PredictJobData, PredictJobResult>;
  /** The batch-chunk queue, cut into the same shards. */
  batchQueue: ShardedQueue;
  /** This API process's id: workers reply to it on its own channel. */
  replicaId: string;
  jobs: JobService;
  /** Batches: upload staging, chunk jobs, progress, results, cancellation. */
  batches: BatchService;
  depth: QueueDepth;
  /** Gathers concurrent online requests into shared queue jobs. */
  gather: OnlineGatherer;
  /** The process's one QueueEvents fan-out: job ends and activations. */
  hub: ResultHub;
  /** Public ids of jobs: encrypted per owner with the deployment's secret. */
  ids: IdSecret;
  /**
   * True once shutdown began: new work gets 503. Given the request being served (`c.req.raw`),
   * false for one that arrived before the signal: it is served to the end.
   */
  isShuttingDown: (request?: Request) => boolean;
  /** Prometheus metrics of this API process (its own registry). */
  metrics: ApiMetrics;
}

/** Hono environment of the app: the variables middleware set. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** The request's id, Server-Timing entries and start (http/request-frame). */
    frame: Frame;
    /** SHA-256 (hex) of the request's API key, set by the auth middleware. */
    apiKeyId: string | undefined;
  };
}

/** Refuses new work with 503 once shutdown began (work already accepted is still answered). */
export function assertAccepting(
  deps: Pick<ApiDeps, 'isShuttingDown'>,
  request: Request | undefined,
): void {
  if (deps.isShuttingDown(request))
    throw new ApiError('unavailable', 'The server is shutting down; retry.', undefined, 1);
}
