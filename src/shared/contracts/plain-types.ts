// Generated from the zod contracts of src/shared/contracts by `npm run contracts:types`;
// do not edit. test/api/openapi-types.test.ts keeps it in step with the schemas.

export type AcceptedJob = {
  id: string;
  status: 'queued' | 'active';
  links: {
    self: string;
  };
};

export type BatchView = {
  id: string;
  status: BatchStatus;
  model: string;
  version: string;
  total: number;
  completed: number;
  /** Rows that failed, cancelled rows included. */
  failed: number;
  /** Rows queued or running. */
  pending: number;
  /** Rows cancelled before they ran (counted in `failed` too). */
  cancelled?: number;
  createdAt: string;
  /** Set once every row has an outcome. */
  finishedAt?: string;
};

export type BatchAccepted = {
  id: string;
  status: 'queued';
  total: number;
  links: {
    self: string;
    results: string;
  };
};

/** One Server-Sent Event, its `data` parsed as JSON. */
export type BatchEvent =
  | {
      event: 'progress';
      data: BatchView;
      id?: string;
    }
  | {
      event: 'done';
      data: BatchView;
      id?: string;
    };

export type BatchItem = {
  /** Echoed in the result line. */
  id?: string;
  features: number[];
};

export type BatchPrediction = {
  /** Id of the job that computed the result. */
  id: string;
  model: string;
  version: string;
  /** Whether the result came from the result cache. */
  cached: boolean;
  predictions: InstanceResult[];
};

export type BatchResultLine =
  | {
      /** Position in the submission, from 0. */
      index: number;
      /** The item's own id, when it had one. */
      id?: string;
      status: 'completed';
      /** Served from the result cache. */
      cached?: true;
      /** The class index. */
      prediction: number;
      label?: string;
      confidence: number;
      probabilities: number[];
    }
  | {
      /** Position in the submission, from 0. */
      index: number;
      /** The item's own id, when it had one. */
      id?: string;
      status: 'completed';
      /** Served from the result cache. */
      cached?: true;
      prediction: number | number[];
    }
  | {
      /** Position in the submission, from 0. */
      index: number;
      /** The item's own id, when it had one. */
      id?: string;
      status: 'completed';
      /** Served from the result cache. */
      cached?: true;
      outputs: Record<string, RawTensor>;
    }
  | {
      /** Position in the submission, from 0. */
      index: number;
      /** The item's own id, when it had one. */
      id?: string;
      status: 'failed';
      error: JobFailure;
    }
  | {
      /** Position in the submission, from 0. */
      index: number;
      /** The item's own id, when it had one. */
      id?: string;
      status: 'cancelled';
    };

export type BatchStatus = 'queued' | 'running' | 'completed' | 'cancelled';

export type ClassificationResult = {
  /** The class index. */
  prediction: number;
  label?: string;
  confidence: number;
  probabilities: number[];
};

export type Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

export type ErrorBody = {
  error: {
    code:
      | 'invalid_json'
      | 'unauthorized'
      | 'model_not_found'
      | 'version_not_found'
      | 'job_not_found'
      | 'batch_not_found'
      | 'not_found'
      | 'method_not_allowed'
      | 'job_not_cancellable'
      | 'payload_too_large'
      | 'unsupported_media_type'
      | 'validation_error'
      | 'idempotency_key_reused'
      | 'rate_limited'
      | 'queue_full'
      | 'unavailable'
      | 'internal_error'
      | 'model_output_invalid'
      | 'inference_failed';
    /** A sentence a user can act on. */
    message: string;
    details?: ErrorDetail[];
  };
};

export type ErrorDetail = {
  /** Where: "instances[2]", "features". */
  path?: string;
  /** NDJSON line, 1-based. */
  line?: number;
  message: string;
};

export type InstanceResult = ClassificationResult | RegressionResult | RawResult;

export type JobView = {
  id: string;
  status: JobStatus;
  model: string;
  version: string;
  attempts: number;
  createdAt: string;
  finishedAt?: string;
  /** The predict body without the envelope. */
  result?: ResultBody;
  error?: JobFailure;
};

/** One Server-Sent Event, its `data` parsed as JSON. */
export type JobEvent =
  | {
      event: 'status';
      data: JobView;
      id?: string;
    }
  | {
      event: 'result';
      data: JobView;
      id?: string;
    }
  | {
      event: 'error';
      data: JobFailure;
      id?: string;
    };

export type JobFailure = {
  code: string;
  message: string;
};

export type JobStatus = 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';

export type HealthLive = {
  status: 'ok';
};

export type LiveAnswer =
  | {
      ref: string | number;
      status: 'completed';
      id: string;
      model: string;
      version: string;
      cached: boolean;
      /** The class index. */
      prediction: number;
      label?: string;
      confidence: number;
      probabilities: number[];
    }
  | {
      ref: string | number;
      status: 'completed';
      id: string;
      model: string;
      version: string;
      cached: boolean;
      prediction: number | number[];
    }
  | {
      ref: string | number;
      status: 'completed';
      id: string;
      model: string;
      version: string;
      cached: boolean;
      outputs: Record<string, RawTensor>;
    }
  | {
      ref: string | number;
      status: 'completed';
      id: string;
      model: string;
      version: string;
      cached: boolean;
      predictions: InstanceResult[];
    }
  | {
      ref?: string | number;
      status: 'failed';
      error: JobFailure;
    };

export type ModelList = {
  models: ModelSummary[];
};

export type ModelMetadata = {
  name: string;
  version: string;
  versions: string[];
  default: string;
  task: Task;
  labels?: string[];
  features?: string[];
  description?: string;
  /** model.json extras. */
  card?: Record<string, unknown>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
};

export type ModelSummary = {
  name: string;
  versions: string[];
  default: string;
  task: Task;
};

export type Prediction = SinglePrediction | BatchPrediction;

export type PredictionEnvelope = {
  /** Id of the job that computed the result. */
  id: string;
  model: string;
  version: string;
  /** Whether the result came from the result cache. */
  cached: boolean;
};

export type RawResult = {
  outputs: Record<string, RawTensor>;
};

export type RawTensor = {
  shape: number[];
  datatype: Datatype;
  data: number[];
};

export type HealthReadyOk = {
  status: 'ready';
  redis: 'ok';
  models: number;
  workers: number;
  queueDepth: number;
};

export type RegressionResult = {
  prediction: number | number[];
};

export type ReloadResult = {
  /** `name@version` keys that appeared. */
  added: string[];
  removed: string[];
  /** Processes that heard the reload request. */
  notified: number;
  models: {
    name: string;
    versions: string[];
    default: string;
  }[];
};

export type ResultBody =
  | InstanceResult
  | {
      predictions: InstanceResult[];
    };

export type SinglePrediction =
  | {
      /** Id of the job that computed the result. */
      id: string;
      model: string;
      version: string;
      /** Whether the result came from the result cache. */
      cached: boolean;
      /** The class index. */
      prediction: number;
      label?: string;
      confidence: number;
      probabilities: number[];
    }
  | {
      /** Id of the job that computed the result. */
      id: string;
      model: string;
      version: string;
      /** Whether the result came from the result cache. */
      cached: boolean;
      prediction: number | number[];
    }
  | {
      /** Id of the job that computed the result. */
      id: string;
      model: string;
      version: string;
      /** Whether the result came from the result cache. */
      cached: boolean;
      outputs: Record<string, RawTensor>;
    };

export type Task = 'classification' | 'regression' | 'raw';

export type TensorSpec = {
  name: string;
  datatype: Datatype;
  /** -1 marks a free dimension. */
  shape: number[];
};

export type HealthUnavailable = {
  status: 'unavailable';
  reason: string;
};

export type V2Error = {
  error: string;
};

export type V2InferRequest = {
  id?: string;
  parameters?: Record<string, unknown>;
  inputs: {
    name: string;
    shape: number[];
    datatype: string;
    parameters?: Record<string, unknown>;
    data: unknown[];
  }[];
  outputs?: {
    name: string;
    parameters?: Record<string, unknown>;
  }[];
};

export type V2InferResponse = {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: V2OutputTensor[];
};

export type V2Live = {
  live: true;
};

export type V2ModelMetadata = {
  name: string;
  versions: string[];
  platform: 'onnxruntime_onnx';
  inputs: TensorSpec[];
  outputs: TensorSpec[];
};

export type V2ModelReady = {
  name: string;
  ready: boolean;
};

export type V2OutputTensor = {
  name: string;
  shape: number[];
  datatype: Datatype;
  /** Numbers, or booleans for BOOL tensors. */
  data: number[] | boolean[];
};

export type V2Ready = {
  ready: boolean;
};

export type V2ServerMetadata = {
  name: string;
  version: string;
  extensions: string[];
};
