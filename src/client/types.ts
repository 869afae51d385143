// Only dependency-free shared files: the client package ships their declarations.
import type { ErrorDetail, JobFailure } from '../shared/errors.js';
import type { InstanceResult, RawTensor } from '../shared/jobs.js';
import type { BatchStatus, BatchView, Datatype, Task, TensorSpec } from '../shared/public-types.js';

export type {
  BatchStatus,
  BatchView,
  Datatype,
  ErrorDetail,
  InstanceResult,
  JobFailure,
  RawTensor,
  Task,
  TensorSpec,
};

/** One row of GET /v1/models. */
export interface ModelSummary {
  name: string;
  versions: string[];
  default: string;
  task: Task;
}

/** Body of GET /v1/models. */
export interface ModelList {
  models: ModelSummary[];
}

/** Body of GET /v1/models/{model}[/versions/{version}]. */
export interface ModelMetadata {
  name: string;
  version: string;
  versions: string[];
  default: string;
  task: Task;
  labels?: string[];
  features?: string[];
  description?: string;
  card?: Record<string, unknown>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

/** The envelope of a finished online prediction. */
export interface PredictionEnvelope {
  /** Id of the job that computed the result (or that the cached result came from). */
  id: string;
  model: string;
  version: string;
  /** Whether the result came from the result cache. */
  cached: boolean;
}

/** 200 for one instance (`features`). */
export type SinglePrediction = PredictionEnvelope & InstanceResult;

/** 200 for many instances (`instances`): results in input order. */
export type BatchPrediction = PredictionEnvelope & { predictions: InstanceResult[] };

/** 202: the job is queued or running; follow `links.self`. */
export interface AcceptedJob {
  id: string;
  status: 'queued' | 'active';
  links: { self: string };
}

/** Any answer of POST /v1/models/{model}/predict. */
export type PredictResponse = SinglePrediction | BatchPrediction | AcceptedJob;

/** The input of a prediction: one instance, many, or the request body itself. */
export type PredictInput =
  | number[]
  | number[][]
  | { features: number[]; instances?: never }
  | { instances: number[][]; features?: never };

/** Public status of a job. */
export type JobStatus = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';

/** The predict body without its envelope: one result, or `predictions` for many. */
export type JobResult = InstanceResult | { predictions: InstanceResult[] };

/** Body of GET /v1/jobs/{id}. */
export interface JobView {
  id: string;
  status: JobStatus;
  model: string;
  version: string;
  attempts: number;
  createdAt: string;
  finishedAt?: string;
  result?: JobResult;
  error?: JobFailure;
}

/** One item of a batch. */
export interface BatchItem {
  /** The caller's own id, echoed in the result line. */
  id?: string;
  features: number[];
}

/** 202 of POST /v1/batches. */
export interface BatchAccepted {
  id: string;
  status: 'queued';
  total: number;
  links: { self: string; results: string };
}

/** One line of GET /v1/batches/{id}/results, in submission order (`index` is 0-based). */
export type BatchResultLine =
  | ({ index: number; id?: string; status: 'completed'; cached?: true } & InstanceResult)
  | { index: number; id?: string; status: 'failed'; error: JobFailure }
  | { index: number; id?: string; status: 'cancelled' };

/** Data of the `progress` and final `done` events of GET /v1/batches/{id}/events. */
export type BatchEvent = ServerEvent<BatchView> & { event: 'progress' | 'done' };

/** The events of GET /v1/jobs/{id}/events: `status` events, then `result` or `error`. */
export type JobEvent =
  | { event: 'status' | 'result'; data: JobView; id?: string }
  | { event: 'error'; data: JobFailure; id?: string };

/** One Server-Sent Event; `data` is parsed as JSON when it is JSON, else the raw text. */
export interface ServerEvent<T = unknown> {
  event: string;
  data: T;
  id?: string;
}

/** Body of GET /health/ready (200 or 503). */
export type HealthReady =
  | { status: 'ready'; redis: 'ok'; models: number; workers: number; queueDepth: number }
  | { status: 'unavailable'; reason: string };

/** A tensor of the Open Inference Protocol. */
export interface V2Tensor {
  name: string;
  shape: number[];
  datatype: Datatype;
  /** Flat (row-major) or nested. */
  data: unknown[];
  parameters?: Record<string, unknown>;
}

/** Body of POST /v2/models/{m}[/versions/{v}]/infer. */
export interface V2InferRequest {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: V2Tensor[];
  outputs?: { name: string; parameters?: Record<string, unknown> }[];
}

/** Answer of an infer request. */
export interface V2InferResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Record<string, unknown>;
  outputs: V2Tensor[];
}

/** Body of GET /v2. */
export interface V2ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

/** Body of GET /v2/models/{m}[/versions/{v}]. */
export interface V2ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}
