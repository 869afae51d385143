import { z } from 'zod';

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
    .meta({ type: 'array', items: {} }),
});
export type InferInput = z.infer<typeof InferInputSchema>;

/** An output a client asks for by name. */
export const InferOutputRequestSchema = z.object({
  name: z.string().min(1).max(256),
  parameters: ParametersSchema.optional(),
});

/** Body of POST /v2/models/{model}[/versions/{version}]/infer (Open Inference Protocol). */
export const InferRequestSchema = z
  .object({
    id: z.string().max(256).optional(),
    parameters: ParametersSchema.optional(),
    inputs: z.array(InferInputSchema).min(1, 'must hold at least one input tensor'),
    outputs: z.array(InferOutputRequestSchema).optional(),
  })
  .meta({ id: 'V2InferRequest' });
export type InferRequest = z.infer<typeof InferRequestSchema>;

export type {
  /** One output tensor of an infer response: flat row-major data. */
  V2OutputTensor as InferOutput,
  /** Body of a successful infer response. */
  V2InferResponse as InferResponse,
} from './contracts/v2.js';
