import type { Datatype } from './onnx-metadata.js';

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
}

/** A raw output tensor of one instance. */
export interface RawTensor {
  shape: number[];
  datatype: Datatype;
  data: number[];
}

/** The prediction result of one instance (API.md "The prediction result"). */
export type InstanceResult =
  | { prediction: number; label?: string; confidence: number; probabilities: number[] }
  | { prediction: number | number[] }
  | { outputs: Record<string, RawTensor> };

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
}

/** BullMQ job name of prediction jobs. */
export const PREDICT_JOB = 'predict';
