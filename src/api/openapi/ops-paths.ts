import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { InferRequestSchema } from '../../shared/v2-schemas.js';
import {
  ADMIN_SECURITY,
  API_KEY_SECURITY,
  errors,
  json,
  ModelPath,
  ModelVersionPath,
  v2Errors,
} from './common.js';
import { ReadySchema, ReloadResultSchema, UnavailableSchema } from './schemas.js';

// The infer request is the schema the /v2 route validates with; responses are built in code.
const V2InferRequestSchema = InferRequestSchema.meta({ id: 'V2InferRequest' });
const V2TensorSchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int()),
  datatype: z.string().meta({ example: 'FP32' }),
  data: z.array(z.union([z.number(), z.boolean()])),
});
const V2InferResponseSchema = z
  .object({
    model_name: z.string(),
    model_version: z.string(),
    id: z.string().optional(),
    outputs: z.array(V2TensorSchema),
  })
  .meta({ id: 'V2InferResponse' });
const V2TensorMetadata = z.object({
  name: z.string(),
  datatype: z.string(),
  shape: z.array(z.number().int()),
});
const V2ModelMetadataSchema = z
  .object({
    name: z.string(),
    versions: z.array(z.string()),
    platform: z.literal('onnxruntime_onnx'),
    inputs: z.array(V2TensorMetadata),
    outputs: z.array(V2TensorMetadata),
  })
  .meta({ id: 'V2ModelMetadata' });
const V2ModelReadySchema = z.object({ name: z.string(), ready: z.boolean() });

const v2 = { tags: ['v2'], security: API_KEY_SECURITY };

function v2ModelPaths(prefix: string, path: z.ZodObject): ZodOpenApiPathsObject {
  return {
    [prefix]: {
      get: {
        ...v2,
        summary: 'Model metadata.',
        requestParams: { path },
        responses: {
          '200': { description: 'Metadata.', content: json(V2ModelMetadataSchema) },
          ...v2Errors(401, 404, 429, 503),
        },
      },
    },
    [`${prefix}/ready`]: {
      get: {
        ...v2,
        summary: 'Whether the model can be served.',
        requestParams: { path },
        responses: {
          '200': { description: 'Readiness.', content: json(V2ModelReadySchema) },
          ...v2Errors(401, 404, 429, 503),
        },
      },
    },
    [`${prefix}/infer`]: {
      post: {
        ...v2,
        summary: 'Inference through the same queue, workers and cache as /v1.',
        requestParams: { path },
        requestBody: { required: true, content: json(V2InferRequestSchema) },
        responses: {
          '200': { description: 'Outputs.', content: json(V2InferResponseSchema) },
          ...v2Errors(400, 401, 404, 413, 429, 500, 503),
        },
      },
    },
  };
}

/** Paths of the Open Inference Protocol (/v2). */
export const v2Paths: ZodOpenApiPathsObject = {
  '/v2': {
    get: {
      ...v2,
      summary: 'Server metadata.',
      responses: {
        '200': {
          description: 'Name, version and protocol extensions.',
          content: json(
            z.object({ name: z.string(), version: z.string(), extensions: z.array(z.string()) }),
          ),
        },
        ...v2Errors(401, 429),
      },
    },
  },
  '/v2/health/live': {
    get: {
      tags: ['v2'],
      summary: 'Liveness (open without an API key).',
      responses: {
        '200': { description: 'Live.', content: json(z.object({ live: z.boolean() })) },
      },
    },
  },
  '/v2/health/ready': {
    get: {
      tags: ['v2'],
      summary: 'Readiness (open without an API key).',
      responses: {
        '200': { description: 'Ready.', content: json(z.object({ ready: z.literal(true) })) },
        '503': { description: 'Not ready.', content: json(z.object({ ready: z.literal(false) })) },
      },
    },
  },
  ...v2ModelPaths('/v2/models/{model}', ModelPath),
  ...v2ModelPaths('/v2/models/{model}/versions/{version}', ModelVersionPath),
};

const text = (description: string, type = 'text/plain') => ({
  description,
  content: { [type]: { schema: z.string() } },
});

/** Health, metrics, docs and admin paths. */
export const opsPaths: ZodOpenApiPathsObject = {
  '/health/live': {
    get: {
      tags: ['operations'],
      summary: 'Liveness, without dependency checks.',
      responses: {
        '200': { description: 'Alive.', content: json(z.object({ status: z.literal('ok') })) },
      },
    },
  },
  '/health/ready': {
    get: {
      tags: ['operations'],
      summary: 'Readiness: Redis reachable and models found.',
      responses: {
        '200': { description: 'Ready.', content: json(ReadySchema) },
        '503': { description: 'Not ready.', content: json(UnavailableSchema) },
      },
    },
  },
  '/metrics': {
    get: {
      tags: ['operations'],
      summary: 'Prometheus text exposition of this API process.',
      security: [{ metricsBearer: [] }, {}],
      responses: { '200': text('Metrics.'), ...errors('unauthorized') },
    },
  },
  '/openapi.json': {
    get: {
      tags: ['operations'],
      summary: 'This document.',
      responses: {
        '200': { description: 'OpenAPI 3.1.', content: json(z.record(z.string(), z.unknown())) },
      },
    },
  },
  '/docs': {
    get: {
      tags: ['operations'],
      summary: 'Interactive API documentation.',
      responses: { '200': text('HTML.', 'text/html') },
    },
  },
  '/docs/assets/{name}': {
    get: {
      tags: ['operations'],
      summary: "A file of /docs' page (Swagger UI, served from the package; no CDN).",
      requestParams: {
        path: z.object({
          name: z.enum(['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png', 'init.js']),
        }),
      },
      responses: {
        '200': {
          description: 'The file (with an ETag; 304 when If-None-Match matches).',
          content: {
            'text/javascript': { schema: z.string() },
            'text/css': { schema: z.string() },
            'image/png': { schema: z.string() },
          },
        },
        '304': { description: 'Not modified.' },
        ...errors('not_found'),
      },
    },
  },
  '/admin/queues': {
    get: {
      tags: ['admin'],
      summary:
        'Bull Board (only when ADMIN_TOKEN is set; its assets and API live below this path).',
      security: ADMIN_SECURITY,
      responses: { '200': text('HTML.', 'text/html'), ...errors('unauthorized', 'not_found') },
    },
  },
  '/admin/models/reload': {
    post: {
      tags: ['admin'],
      summary: 'Rescan MODEL_DIR here and tell every API replica and worker to do the same.',
      security: ADMIN_SECURITY,
      responses: {
        '200': { description: 'What changed.', content: json(ReloadResultSchema) },
        ...errors('unauthorized', 'not_found', 'unavailable'),
      },
    },
  },
};
