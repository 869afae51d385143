import { z } from 'zod';
import type { Datatype } from './onnx-metadata.js';

const ParametersSchema = z.record(z.string(), z.unknown());

/** One input tensor of an infer request; `data` is flat or nested row-major. */
export const InferInputSchema = z.object({
  name: z.string().min(1).max(256),
  shape: z.array(z.number().int().min(0)).max(32),
  datatype: z.string().min(1).max(16),
  parameters: ParametersSchema.optional(),
  // Taken as it comes: its length is checked against `shape` before any element is looked at.
  data: z
    .custom<unknown[]>((v) => Array.isArray(v), 'must be an array')
    .meta({ override: { type: 'array', items: {} } }),
});
export type InferInput = z.infer<typeof InferInputSchema>;

/** An output a client asks for by name. */
export const InferOutputRequestSchema = z.object({
  name: z.string().min(1).max(256),
  parameters: ParametersSchema.optional(),
});

/** Body of POST /v2/models/{model}[/versions/{version}]/infer (Open Inference Protocol). */
export const InferRequestSchema = z.object({
  id: z.string().max(256).optional(),
  parameters: ParametersSchema.optional(),
  inputs: z.array(InferInputSchema).min(1, 'must hold at least one input tensor'),
  outputs: z.array(InferOutputRequestSchema).optional(),
});
export type InferRequest = z.infer<typeof InferRequestSchema>;

/** One output tensor of an infer response: flat row-major data. */
export interface InferOutput {
  name: string;
  shape: number[];
  datatype: Datatype;
  /** Numbers, or booleans for BOOL tensors. */
  data: number[] | boolean[];
}

/** Body of a successful infer response. */
export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: InferOutput[];
}
