import { z } from 'zod';
import { TaskSchema, TensorSpecSchema } from './common.js';

/** One row of GET /v1/models. */
export const ModelSummarySchema = z
  .strictObject({
    name: z.string(),
    versions: z.array(z.string()),
    default: z.string(),
    task: TaskSchema,
  })
  .meta({ id: 'ModelSummary' });
export type ModelSummary = z.infer<typeof ModelSummarySchema>;

/** GET /v1/models. */
export const ModelListSchema = z
  .strictObject({ models: z.array(ModelSummarySchema) })
  .meta({ id: 'ModelList' });
export type ModelList = z.infer<typeof ModelListSchema>;

/** GET /v1/models/{model}[/versions/{version}]. */
export const ModelMetadataSchema = z
  .strictObject({
    name: z.string(),
    version: z.string(),
    versions: z.array(z.string()),
    default: z.string(),
    task: TaskSchema,
    labels: z.array(z.string()).optional(),
    features: z.array(z.string()).optional(),
    description: z.string().optional(),
    card: z.record(z.string(), z.unknown()).optional().meta({ description: 'model.json extras.' }),
    inputs: z.array(TensorSpecSchema),
    outputs: z.array(TensorSpecSchema),
  })
  .meta({ id: 'ModelMetadata' });
export type ModelMetadata = z.infer<typeof ModelMetadataSchema>;
