import { z } from 'zod';
import { ERROR_CATALOGUE, type ErrorCode } from '../../shared/errors.js';
import { FeatureSchema, ModelNameSchema, VersionSchema } from '../../shared/schemas.js';

// Response bodies of the API for the OpenAPI document. Requests are described by the schemas
// the routes validate with (src/shared); responses are built in code, so they are written here.

const codes = Object.keys(ERROR_CATALOGUE) as [ErrorCode, ...ErrorCode[]];

/** The error envelope of the own API. */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(codes),
      message: z.string().meta({ description: 'A sentence a user can act on.' }),
      details: z
        .array(
          z.object({
            path: z.string().optional().meta({ description: 'Where: "instances[2]", "features".' }),
            line: z.number().int().optional().meta({ description: 'NDJSON line, 1-based.' }),
            message: z.string(),
          }),
        )
        .optional(),
    }),
  })
  .meta({ id: 'Error' });

/** The error body of every /v2 route (Open Inference Protocol). */
export const V2ErrorSchema = z.object({ error: z.string() }).meta({ id: 'V2Error' });

const TensorSpecSchema = z
  .object({
    name: z.string(),
    datatype: z.string().meta({ example: 'FP32' }),
    shape: z.array(z.number().int()).meta({ description: '-1 marks a free dimension.' }),
  })
  .meta({ id: 'TensorSpec' });

const RawTensorSchema = z.object({
  shape: z.array(z.number().int()),
  datatype: z.string(),
  data: z.array(z.number()),
});

const ClassificationResultSchema = z
  .object({
    prediction: z.number().int(),
    label: z.string().optional(),
    confidence: z.number(),
    probabilities: z.array(z.number()),
  })
  .meta({ id: 'ClassificationResult' });

const RegressionResultSchema = z
  .object({ prediction: z.union([z.number(), z.array(z.number())]) })
  .meta({ id: 'RegressionResult' });

const RawResultSchema = z
  .object({ outputs: z.record(z.string(), RawTensorSchema) })
  .meta({ id: 'RawResult' });

/** The result of one instance, by the model's task. */
export const InstanceResultSchema = z
  .union([ClassificationResultSchema, RegressionResultSchema, RawResultSchema])
  .meta({ id: 'InstanceResult' });

const ResultBodySchema = z.union([
  InstanceResultSchema,
  z.object({ predictions: z.array(InstanceResultSchema) }),
]);

/** 200 of a prediction: the envelope plus one result, or `predictions` in input order. */
export const PredictResponseSchema = z
  .object({
    id: z.string().meta({ description: 'Id of the job that computed the result.' }),
    model: ModelNameSchema,
    version: VersionSchema,
    cached: z.boolean(),
  })
  .and(ResultBodySchema)
  .meta({ id: 'PredictResponse' });

/** 202 of work not done in time. */
export const AcceptedSchema = z
  .object({
    id: z.string(),
    status: z.enum(['queued', 'active']),
    links: z.object({ self: z.string().meta({ example: '/v1/jobs/7fda06b2-...' }) }),
  })
  .meta({ id: 'Accepted' });

/** GET /v1/jobs/{id}. */
export const JobViewSchema = z
  .object({
    id: z.string(),
    status: z.enum(['queued', 'active', 'completed', 'failed', 'cancelled']),
    model: ModelNameSchema,
    version: VersionSchema,
    attempts: z.number().int(),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().optional(),
    result: ResultBodySchema.optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  })
  .meta({ id: 'Job' });

/** GET /v1/models. */
export const ModelListSchema = z
  .object({
    models: z.array(
      z.object({
        name: ModelNameSchema,
        versions: z.array(VersionSchema),
        default: VersionSchema,
        task: z.enum(['classification', 'regression', 'raw']),
      }),
    ),
  })
  .meta({ id: 'ModelList' });

/** GET /v1/models/{model}[/versions/{version}]. */
export const ModelMetadataSchema = z
  .object({
    name: ModelNameSchema,
    version: VersionSchema,
    versions: z.array(VersionSchema),
    default: VersionSchema,
    task: z.enum(['classification', 'regression', 'raw']),
    labels: z.array(z.string()).optional(),
    features: z.array(z.string()).optional(),
    description: z.string().optional(),
    card: z.record(z.string(), z.unknown()).optional(),
    inputs: z.array(TensorSpecSchema),
    outputs: z.array(TensorSpecSchema),
  })
  .meta({ id: 'ModelMetadata' });

/** One item of a batch (a JSON `items` entry or an NDJSON line). */
export const BatchItemSchema = z
  .object({ id: z.string().max(256).optional(), features: z.array(FeatureSchema) })
  .meta({ id: 'BatchItem' });

/** 202 of POST /v1/batches. */
export const BatchAcceptedSchema = z
  .object({
    id: z.string(),
    status: z.literal('queued'),
    total: z.number().int(),
    links: z.object({ self: z.string(), results: z.string() }),
  })
  .meta({ id: 'BatchAccepted' });

/** GET /v1/batches/{id}: `completed + failed + pending = total`. */
export const BatchViewSchema = z
  .object({
    id: z.string(),
    status: z.enum(['queued', 'running', 'completed', 'cancelled']),
    model: ModelNameSchema,
    version: VersionSchema,
    total: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int(),
    pending: z.number().int(),
    cancelled: z.number().int().optional(),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'Batch' });

/** One NDJSON line of GET /v1/batches/{id}/results. */
export const BatchResultLineSchema = z
  .union([
    z
      .object({
        index: z.number().int(),
        id: z.string().optional(),
        status: z.literal('completed'),
      })
      .and(InstanceResultSchema),
    z.object({
      index: z.number().int(),
      id: z.string().optional(),
      status: z.literal('failed'),
      error: z.object({ code: z.string(), message: z.string() }),
    }),
  ])
  .meta({ id: 'BatchResultLine' });

/** An answer on the live feed, server to client. */
export const LiveAnswerSchema = z
  .union([
    z
      .object({
        ref: z.union([z.string(), z.number()]),
        id: z.string(),
        status: z.literal('completed'),
      })
      .and(InstanceResultSchema),
    z.object({
      ref: z.union([z.string(), z.number()]).optional(),
      status: z.literal('failed'),
      error: z.object({ code: z.string(), message: z.string() }),
    }),
  ])
  .meta({ id: 'LiveAnswer' });

/** GET /health/ready when ready. */
export const ReadySchema = z
  .object({
    status: z.literal('ready'),
    redis: z.literal('ok'),
    models: z.number().int(),
    workers: z.number().int(),
    queueDepth: z.number().int(),
  })
  .meta({ id: 'Ready' });

/** GET /health/ready when not ready. */
export const UnavailableSchema = z
  .object({ status: z.literal('unavailable'), reason: z.string() })
  .meta({ id: 'Unavailable' });

/** POST /admin/models/reload. */
export const ReloadResultSchema = z
  .object({
    added: z.array(z.string()).meta({ description: '`name@version` keys that appeared.' }),
    removed: z.array(z.string()),
    notified: z.number().int().meta({ description: 'Processes that heard the reload request.' }),
    models: z.array(
      z.object({ name: z.string(), versions: z.array(z.string()), default: z.string() }),
    ),
  })
  .meta({ id: 'ReloadResult' });
