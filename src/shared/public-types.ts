// Shapes of the public API that the client package ships as well: the limits both sides check,
// and the contracts' types in their plain form (no zod), so the client needs none of the
// server's dependencies.

/**
 * Largest finite float32: a larger JSON number would become Infinity in the model's input
 * tensor, so server and CLI refuse it.
 */
export const FLOAT32_MAX = 3.4028234663852886e38;

export type {
  /** Public status of a batch. */
  BatchStatus,
  /** GET /v1/batches/{id}: progress of a batch; `completed + failed + pending = total`. */
  BatchView,
  /** Open Inference Protocol tensor datatypes. */
  Datatype,
  /** What a model's outputs mean. */
  Task,
  /** A named tensor of a model: datatype and shape, -1 for a free dimension. */
  TensorSpec,
} from './contracts/plain-types.js';
