import type { JobsOptions } from 'bullmq';
import type { Config } from './config.js';
import type { InstanceResult } from './contracts/plain-types.js';
import type { Datatype } from './public-types.js';

/** The payload of one prediction job in the BullMQ queue. */
export interface PredictJobData {
  model: string;
  version: string;
  /** Number of instances. */
  rows: number;
  /** Row-major values of all instances, rows * rowSize numbers. */
  values: number[];
  /** How results are shaped: by the model's task, or raw output tensors. */
  format: 'task' | 'raw';
  /** Whether the request sent one instance (`features`): its result is not wrapped in a list. */
  single: boolean;
  /** Result-cache key to fill, absent when caching is off. */
  cacheKey?: string;
  /** Request id of the HTTP request that queued the job, for logs. */
  requestId?: string;
  /** API replica that waits for the job: the worker publishes how it ended to its channel. */
  replyTo?: string;
  /** Owner (API key digest, or `anon`) of a job queued on its own; parts carry their own. */
  owner?: string;
  /**
   * Whole input tensors by input name, for models the row batcher cannot take (several inputs,
   * free non-batch dimensions): run alone in one session run; `values` is then empty and the
   * job's one result holds the whole output tensors.
   */
  tensors?: Record<string, JobTensor>;
  /**
   * Set when the API gathered several concurrent requests into this one job: each part is one
   * request's consecutive rows of `values`, with its own result, failure and cache entry.
   */
  parts?: JobPart[];
}

/** One request's share of a gathered job. */
export interface JobPart {
  rows: number;
  /** Whether the request sent one instance (`features`). */
  single: boolean;
  /** Result-cache key of this request's input. */
  cacheKey?: string;
  requestId?: string;
  /** Owner (API key digest, or `anon`) of the request. */
  owner?: string;
  /** An identical request already in flight elsewhere carries this one: nothing to run. */
  skip?: boolean;
}

/** How one part of a gathered job came out: its results, or its own failure. */
export interface PartResult {
  results?: InstanceResult[];
  /** Whether this part's request sent one instance. */
  single?: boolean;
  error?: { code: string; message: string };
}

/** An input tensor carried by a job: flat row-major data (booleans as 0/1). */
export interface JobTensor {
  datatype: Datatype;
  shape: number[];
  data: number[];
}

// A raw output tensor of one instance, and the prediction result of one instance (API.md "The
// prediction result"): the contracts' types (src/shared/contracts/results.ts), plain.
export type { InstanceResult, RawTensor } from './contracts/plain-types.js';

/** What a worker returns for a job (BullMQ returnvalue) and what the cache stores. */
export interface PredictJobResult {
  /** One result per instance, in input order. */
  results: InstanceResult[];
  /** Id of the job that computed the results. */
  jobId: string;
  /** Milliseconds the job waited in the queue before a worker took it. */
  queueMs: number;
  /** Milliseconds of the inference batch the job ran in. */
  inferMs: number;
  /** Instances in the inference batch the job ran in. */
  batchSize: number;
  /** Per-part outcomes of a gathered job (`results` is then empty). */
  parts?: PartResult[];
  /** Whether the job's request sent one instance: lets a waiter shape the answer without a read. */
  single?: boolean;
  /** When the worker finished the job, ms since epoch (BullMQ's finishedOn is a moment later). */
  finishedAt?: number;
  /** Owner of the request that computed a cache entry (absent on job return values). */
  owner?: string;
}

/** Internal ref of part `index` of gathered job `jobId` (never shown to clients). */
export function partId(jobId: string, index: number): string {
  return `${jobId}-p${index}`;
}

/**
 * Whether a value read from a cache key is a result entry (a JSON object). Where the cache is
 * per owner (CACHE_SCOPE=key) an input in flight is claimed under its cache entry's own key (see
 * api/predict/claims.ts), so the same key holds either the entry or a part ref (`partId`) naming
 * the part that is computing it.
 */
export function isCacheEntry(value: string | null | undefined): value is string {
  return typeof value === 'string' && value.charCodeAt(0) === 123; // '{'
}

/** Splits a part ref into its job id and part index; undefined for a plain job id. */
export function parsePartId(id: string): { jobId: string; index: number } | undefined {
  const m = /^(.+)-p(\d{1,6})$/.exec(id);
  return m?.[1] && m[2] ? { jobId: m[1], index: Number(m[2]) } : undefined;
}

/** The result of one part, shaped like a single job's result (what its cache entry holds). */
export function partResult(
  result: PredictJobResult,
  index: number,
): PredictJobResult | PartResult['error'] {
  const part = result.parts?.[index];
  if (!part) return { code: 'internal_error', message: `job ${result.jobId} has no part ${index}` };
  if (part.error || !part.results)
    return part.error ?? { code: 'inference_failed', message: 'no result' };
  return { ...result, parts: undefined, results: part.results, jobId: partId(result.jobId, index) };
}

/** BullMQ job name of prediction jobs. */
export const PREDICT_JOB = 'predict';

/** BullMQ options of a prediction job: attempts with backoff, results kept RESULT_TTL_S. */
export function predictJobOptions(
  config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS' | 'RESULT_TTL_S' | 'RESULT_MAX_JOBS'>,
): JobsOptions {
  const keep = { age: config.RESULT_TTL_S, count: config.RESULT_MAX_JOBS };
  return {
    attempts: config.JOB_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.JOB_BACKOFF_MS },
    removeOnComplete: keep,
    removeOnFail: keep,
  };
}
