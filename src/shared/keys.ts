/**
 * Every Redis key inferq writes beside BullMQ's own, built from one prefix. The prefix is a
 * Cluster hash tag by default (`{inferq}`), so every key of one deployment shares a slot.
 */
export interface Keys {
  /** Prefix handed to BullMQ for its queue keys. */
  readonly prefix: string;
  /** Cached per-request prediction results, by input hash. */
  cache(hash: string): string;
  /** Job id stored under a client's Idempotency-Key. */
  idempotency(key: string): string;
  /** Record of a cancelled job, kept for RESULT_TTL_S after the job itself is removed. */
  cancelled(jobId: string): string;
  /** Part id of the queued job carrying an input in flight, by input hash (coalescing). */
  inflight(hash: string): string;
  /** Rate-limit state (GCRA theoretical arrival time) of one client: a key's sha256 or an IP. */
  rateLimit(clientId: string): string;
  /** Pub/sub channel on which API and workers are told to rescan MODEL_DIR. */
  modelsReloadChannel(): string;
  /** Record of one batch: a hash of its model, counters and chunk claims. */
  batch(id: string): string;
  /** Staged input rows of chunk `n` of a batch, until a worker has run them. */
  batchInput(id: string, n: number): string;
  /** Result lines (NDJSON text) of chunk `n` of a batch. */
  batchOutput(id: string, n: number): string;
}

/** Name of the BullMQ queue holding prediction jobs. */
export const PREDICT_QUEUE = 'predict';

/**
 * Name of the BullMQ queue holding batch chunks. Apart from online jobs so that a worker holds
 * only the few chunks it runs (BATCH_WORKER_CONCURRENCY) and other workers take the rest.
 */
export const BATCH_QUEUE = 'batch';

/** Builds the key set for one prefix. */
export function createKeys(prefix: string): Keys {
  return {
    prefix,
    cache: (hash) => `${prefix}:cache:${hash}`,
    idempotency: (key) => `${prefix}:idem:${key}`,
    cancelled: (jobId) => `${prefix}:cancelled:${jobId}`,
    inflight: (hash) => `${prefix}:inflight:${hash}`,
    rateLimit: (clientId) => `${prefix}:ratelimit:${clientId}`,
    modelsReloadChannel: () => `${prefix}:models:reload`,
    batch: (id) => `${prefix}:batch:${id}`,
    batchInput: (id, n) => `${prefix}:batch:${id}:in:${n}`,
    batchOutput: (id, n) => `${prefix}:batch:${id}:out:${n}`,
  };
}
