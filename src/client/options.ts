import type { ByteSource, ItemSource } from './streams.js';
import type { CallOptions } from './transport.js';
import type { AcceptedJob, BatchItem, PredictResponse } from './types.js';

/** Options of `predict`. */
export interface PredictOptions extends CallOptions {
  /** Model version; default the model's highest. */
  version?: string;
  /** Seconds the server may wait for the result before answering 202 (`Prefer: wait=N`). */
  wait?: number;
  /** Answer 202 at once without waiting (`Prefer: respond-async`). */
  async?: boolean;
}

/** Options of `submitJob`. */
export interface SubmitJobOptions extends CallOptions {
  version?: string;
  /** 1 (highest) .. 10. */
  priority?: number;
  /** Makes a retried submission return the first job (`Idempotency-Key`). */
  idempotencyKey?: string;
}

/** Options of long-polling reads. */
export interface WaitOptions extends CallOptions {
  /** Seconds to wait for the job or batch to end before answering with its current state. */
  wait?: number;
}

/** Options of `createBatch`. */
export interface BatchOptions extends CallOptions {
  version?: string;
  /** 1 (highest) .. 10. */
  priority?: number;
}

/** Where a batch's items come from: a list, an (async) iterable, or raw NDJSON bytes. */
export type BatchSource = BatchItem[] | ItemSource | { ndjson: ByteSource };

/** Most items the server takes in one JSON body; bigger lists are streamed as NDJSON. */
export const MAX_JSON_BATCH_ITEMS = 10_000;

/** Whether a predict answer is the 202 of a job that has not finished yet. */
export function isAccepted(res: PredictResponse | AcceptedJob): res is AcceptedJob {
  return !('model' in res) && 'links' in res;
}
