// The shapes of the public API. Answers are the zod contracts' types, emitted as plain types
// (src/shared/contracts/plain-types.ts, kept equal to the schemas by a test), so the client
// package ships their declarations without zod; below them, the client's own input shapes.
import type {
  AcceptedJob,
  BatchPrediction,
  HealthReadyOk,
  HealthUnavailable,
  ResultBody,
  SinglePrediction,
  Datatype,
} from '../shared/contracts/plain-types.js';

export type {
  AcceptedJob,
  BatchAccepted,
  BatchEvent,
  BatchItem,
  BatchPrediction,
  BatchResultLine,
  BatchStatus,
  BatchView,
  ClassificationResult,
  Datatype,
  ErrorBody,
  ErrorDetail,
  InstanceResult,
  JobEvent,
  JobFailure,
  JobStatus,
  JobView,
  LiveAnswer,
  ModelList,
  ModelMetadata,
  ModelSummary,
  Prediction,
  PredictionEnvelope,
  RawResult,
  RawTensor,
  RegressionResult,
  ReloadResult,
  SinglePrediction,
  Task,
  TensorSpec,
  V2InferResponse,
  V2ModelMetadata,
  V2OutputTensor,
  V2ServerMetadata,
} from '../shared/contracts/plain-types.js';

/** Any answer of POST /v1/models/{model}/predict. */
export type PredictResponse = SinglePrediction | BatchPrediction | AcceptedJob;

/** The input of a prediction: one instance, many, or the request body itself. */
export type PredictInput =
  | number[]
  | number[][]
  | { features: number[]; instances?: never }
  | { instances: number[][]; features?: never };

/** The predict body without its envelope: one result, or `predictions` for many. */
export type JobResult = ResultBody;

/** One Server-Sent Event; `data` is parsed as JSON when it is JSON, else the raw text. */
export interface ServerEvent<T = unknown> {
  event: string;
  data: T;
  id?: string;
}

/** Body of GET /health/ready (200 or 503). */
export type HealthReady = HealthReadyOk | HealthUnavailable;

/** An input tensor of the Open Inference Protocol: `data` flat (row-major) or nested. */
export interface V2Tensor {
  name: string;
  shape: number[];
  datatype: Datatype;
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
