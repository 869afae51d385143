// The package's public entry: the typed client of the inferq API.
export { InferqClient } from './client.js';
export {
  isAccepted,
  MAX_JSON_BATCH_ITEMS,
  type BatchOptions,
  type BatchSource,
  type PredictOptions,
  type SubmitJobOptions,
  type WaitOptions,
} from './options.js';
export { InferqError, type InferqErrorInit } from './errors.js';
export type { ByteSource, ItemSource } from './streams.js';
export type { CallOptions, ClientOptions } from './transport.js';
export type * from './types.js';
export { V2Client } from './v2.js';
