import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import type { PredictJobData, PredictJobResult } from '../shared/jobs.js';
import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import type { ModelRepository } from '../shared/model-repository.js';
import type { JobService } from './job-service.js';
import type { QueueDepth } from './queue-depth.js';

/** Everything the routes need, built by main.ts (or a test) and passed to createApp. */
export interface ApiDeps {
  config: Config;
  logger: Logger;
  repository: ModelRepository;
  /** Producer connection: fails fast while Redis is away. */
  redis: Redis;
  keys: Keys;
  queue: Queue<PredictJobData, PredictJobResult>;
  jobs: JobService;
  depth: QueueDepth;
  /** True once shutdown began: new work gets 503. */
  isShuttingDown: () => boolean;
}

/** Hono environment of the app: the variables middleware set. */
export interface AppEnv {
  Variables: {
    requestId: string;
  };
}
