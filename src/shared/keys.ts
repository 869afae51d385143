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
}

/** Name of the BullMQ queue holding prediction jobs. */
export const PREDICT_QUEUE = 'predict';

/** Builds the key set for one prefix. */
export function createKeys(prefix: string): Keys {
  return {
    prefix,
    cache: (hash) => `${prefix}:cache:${hash}`,
    idempotency: (key) => `${prefix}:idem:${key}`,
    cancelled: (jobId) => `${prefix}:cancelled:${jobId}`,
  };
}
