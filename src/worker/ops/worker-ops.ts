import type { Config } from '../../shared/config.js';
import { createKeys } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import { ReloadSignal } from '../../shared/reload-signal.js';
import type { ModelRepository } from '../../shared/model-repository.js';
import { topologyOf } from '../../shared/redis.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import type { WorkerMetrics } from './worker-metrics.js';
import type { ModelPool } from '../inference/model-pool.js';
import { ModelWatcher } from './model-watcher.js';

/** Options of createWorkerOps. */
export interface WorkerOpsOptions {
  config: Config;
  logger: Logger;
  repository: ModelRepository;
  pool: ModelPool;
  metrics: WorkerMetrics;
}

/** The operator-facing side of a worker: hot model reloads and the metrics endpoint. */
export interface WorkerOps {
  /** Rescans MODEL_DIR now and loads or unloads versions; resolves when done. */
  reload(): Promise<void>;
  /** For the processor: rescan unless a scan started after the job (created at `sinceMs`). */
  onMissingModel(sinceMs: number): Promise<void>;
  /** Port of the metrics endpoint, when it runs. */
  metricsPort(): number | undefined;
  /**
   * Starts the metrics endpoint, periodic rescans and the reload subscription (not waited for:
   * Redis may be away; `subscribed()` settles once it holds).
   */
  start(): Promise<void>;
  subscribed(): Promise<void>;
  close(): Promise<void>;
}

/** Builds the worker's reload watcher and metrics endpoint (started by `start()`). */
export function createWorkerOps(options: WorkerOpsOptions): WorkerOps {
  const { config, logger, repository, pool, metrics } = options;
  const watcher = new ModelWatcher({
    repository,
    pool,
    versionsKept: config.MODEL_VERSIONS_KEPT,
    logger,
    onLoadFailed: (model) => metrics.loadFailed(model),
  });
  const signal = new ReloadSignal({
    topology: topologyOf(config),
    channel: createKeys(config.QUEUE_PREFIX).modelsReloadChannel(),
    periodMs: config.MODEL_RESCAN_MS,
    logger,
    reload: () => watcher.sync(),
  });
  let server: MetricsServer | undefined;
  let subscribed: Promise<void> = Promise.resolve();
  return {
    reload: () => signal.trigger(),
    // Hosts' clocks differ a little: a scan must have started a second after the job to count.
    onMissingModel: (sinceMs) => signal.fresh(sinceMs + 1000),
    metricsPort: () => server?.port,
    subscribed: () => subscribed,
    start: async () => {
      subscribed = signal.start();
      if (config.WORKER_METRICS_PORT > 0) {
        server = await startMetricsServer({
          registry: metrics.registry,
          port: config.WORKER_METRICS_PORT,
          host: config.HOST,
          token: config.METRICS_TOKEN,
          logger,
        });
      }
    },
    close: async () => {
      await signal.close();
      await server?.close();
    },
  };
}
