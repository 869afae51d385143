/**
 * Every Redis key inferq writes beside BullMQ's own, built from one prefix. The prefix is a
 * Cluster hash tag by default (`{inferq}`). With one queue shard every key of a deployment
 * shares that tag (one slot). With more (QUEUE_SHARDS > 1), per-request keys drop it and spread
 * over the whole Cluster: an input's cache entry and in-flight claim share a tag of their own
 * (one MGET reads both), a batch's keys share its id as tag (its scripts touch several).
 */
export interface Keys {
  /** Prefix handed to BullMQ for its queue keys. */
  readonly prefix: string;
  /**
   * Cached per-request prediction results, by cache scope (an owner tag, or `shared`, see
   * CACHE_SCOPE) and input hash.
   */
  cache(scope: string, hash: string): string;
  /** Job id stored under a client's Idempotency-Key. */
  idempotency(key: string): string;
  /** Record of a cancelled job, kept for RESULT_TTL_S after the job itself is removed. */
  cancelled(jobId: string): string;
  /** Part ref of the queued job carrying an input in flight, by owner tag and input hash. */
  inflight(scope: string, hash: string): string;
  /** The deployment's secret for public ids (when ID_SECRET is not set). */
  idSecret(): string;
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

/** The key set of a deployment's settings. */
export function keysOf(config: { QUEUE_PREFIX: string; QUEUE_SHARDS: number }): Keys {
  return createKeys(config.QUEUE_PREFIX, config.QUEUE_SHARDS);
}

/** Builds the key set for one prefix and number of queue shards. */
export function createKeys(prefix: string, shards = 1): Keys {
  if (shards > 1) return spreadKeys(prefix);
  return {
    prefix,
    cache: (scope, hash) => `${prefix}:cache:${scope}:${hash}`,
    idempotency: (key) => `${prefix}:idem:${key}`,
    cancelled: (jobId) => `${prefix}:cancelled:${jobId}`,
    inflight: (scope, hash) => `${prefix}:inflight:${scope}:${hash}`,
    idSecret: () => `${prefix}:id-secret`,
    rateLimit: (clientId) => `${prefix}:ratelimit:${clientId}`,
    modelsReloadChannel: () => `${prefix}:models:reload`,
    batch: (id) => `${prefix}:batch:${id}`,
    batchInput: (id, n) => `${prefix}:batch:${id}:in:${n}`,
    batchOutput: (id, n) => `${prefix}:batch:${id}:out:${n}`,
  };
}

// The prefix without its hash tag braces: `{inferq}` -> `inferq`.
const untagged = (prefix: string): string => prefix.replace(/[{}]/g, '');

function spreadKeys(prefix: string): Keys {
  const base = untagged(prefix);
  return {
    prefix,
    cache: (scope, hash) => `${base}:cache:{${scope}:${hash}}`,
    idempotency: (key) => `${base}:idem:${key}`,
    cancelled: (jobId) => `${base}:cancelled:${jobId}`,
    inflight: (scope, hash) => `${base}:inflight:{${scope}:${hash}}`,
    idSecret: () => `${prefix}:id-secret`,
    rateLimit: (clientId) => `${base}:ratelimit:${clientId}`,
    modelsReloadChannel: () => `${prefix}:models:reload`,
    batch: (id) => `${base}:batch:{${id}}`,
    batchInput: (id, n) => `${base}:batch:{${id}}:in:${n}`,
    batchOutput: (id, n) => `${base}:batch:{${id}}:out:${n}`,
  };
}
