// Shapes of the public API that the client package ships as well: plain types (and the limits
// both sides check) with no imports, so the client needs none of the server's dependencies.

/**
 * Largest finite float32: a larger JSON number would become Infinity in the model's input
 * tensor, so server and CLI refuse it.
 */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** What a model's outputs mean. */
export type Task = 'classification' | 'regression' | 'raw';

/** Open Inference Protocol tensor datatypes. */
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

/** A named tensor of a model: datatype and shape, -1 for a free dimension. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** Public status of a batch. */
export type BatchStatus = 'queued' | 'running' | 'completed' | 'cancelled';

/** GET /v1/batches/{id}: progress of a batch; `completed + failed + pending = total`. */
export interface BatchView {
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
  /** Rows cancelled before they ran (counted in `failed` too); present when some were. */
  cancelled?: number;
  createdAt: string;
  /** Set once every row has an outcome. */
  finishedAt?: string;
}
