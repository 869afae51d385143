import { z } from 'zod';
import { DatatypeSchema, TensorSpecSchema } from './common.js';

/** GET /v2: server metadata. */
export const V2ServerMetadataSchema = z
  .strictObject({ name: z.string(), version: z.string(), extensions: z.array(z.string()) })
  .meta({ id: 'V2ServerMetadata' });
export type V2ServerMetadata = z.infer<typeof V2ServerMetadataSchema>;

/** GET /v2/models/{m}[/versions/{v}]. */
export const V2ModelMetadataSchema = z
  .strictObject({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.literal('onnxruntime_onnx'),
    inputs: z.array(TensorSpecSchema),
    outputs: z.array(TensorSpecSchema),
  })
  .meta({ id: 'V2ModelMetadata' });
export type V2ModelMetadata = z.infer<typeof V2ModelMetadataSchema>;

/** GET /v2/models/{m}[/versions/{v}]/ready: 200 when ready, 503 with `ready: false`. */
export const V2ModelReadySchema = z
  .strictObject({ name: z.string(), ready: z.boolean() })
  .meta({ id: 'V2ModelReady' });
export type V2ModelReady = z.infer<typeof V2ModelReadySchema>;

/** One output tensor of an infer response: flat row-major data. */
export const V2OutputTensorSchema = z
  .strictObject({
    name: z.string(),
    shape: z.array(z.number().int()),
    datatype: DatatypeSchema,
    data: z.union([z.array(z.number()), z.array(z.boolean())]).meta({
      description: 'Numbers, or booleans for BOOL tensors.',
    }),
  })
  .meta({ id: 'V2OutputTensor' });
export type V2OutputTensor = z.infer<typeof V2OutputTensorSchema>;

/** 200 of POST /v2/models/{m}[/versions/{v}]/infer. */
export const V2InferResponseSchema = z
  .strictObject({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    outputs: z.array(V2OutputTensorSchema),
  })
  .meta({ id: 'V2InferResponse' });
export type V2InferResponse = z.infer<typeof V2InferResponseSchema>;

/** GET /v2/health/live. */
export const V2LiveSchema = z.strictObject({ live: z.literal(true) }).meta({ id: 'V2Live' });
/** GET /v2/health/ready: 200 `{ready: true}` or 503 `{ready: false}`. */
export const V2ReadySchema = z.strictObject({ ready: z.boolean() }).meta({ id: 'V2Ready' });
