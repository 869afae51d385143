import { z } from 'zod';
import type { ZodOpenApiOperationObject, ZodOpenApiPathsObject } from 'zod-openapi';
import { JobRequestSchema, PredictRequestSchema, VersionSchema } from '../../shared/schemas.js';
import { batchPaths, livePaths } from './batch-paths.js';
import {
  API_KEY_SECURITY,
  COMMON_V1,
  errors,
  IdPath,
  json,
  ModelPath,
  ModelVersionPath,
  RETRY_AFTER,
  waitHeaders,
  waitQuery,
} from './common.js';
import {
  AcceptedSchema,
  JobViewSchema,
  ModelListSchema,
  ModelMetadataSchema,
  PredictResponseSchema,
} from './schemas.js';

const PredictBody = PredictRequestSchema.meta({ id: 'PredictRequest' });
const JobBody = JobRequestSchema.meta({ id: 'JobRequest' });

const versionQuery = z.object({ version: VersionSchema.optional() });
const versionHeader = z.object({
  'x-model-version': VersionSchema.optional(),
  ...waitHeaders.shape,
});
const accepted = {
  description: 'Queued and not finished in time; poll `links.self`.',
  headers: RETRY_AFTER.extend({ Location: z.string() }),
  content: json(AcceptedSchema),
};

function predictOp(summary: string, params: ZodOpenApiOperationObject['requestParams']) {
  return {
    tags: ['predict'],
    summary,
    security: API_KEY_SECURITY,
    requestParams: params,
    requestBody: { required: true, content: json(PredictBody) },
    responses: {
      '200': {
        description: 'The prediction (from the cache when `cached` is true).',
        headers: z.object({ 'Server-Timing': z.string(), 'X-Request-Id': z.string() }),
        content: json(PredictResponseSchema),
      },
      '202': accepted,
      ...errors(
        'invalid_json',
        'model_not_found',
        'version_not_found',
        'payload_too_large',
        'unsupported_media_type',
        'validation_error',
        'queue_full',
        'model_output_invalid',
        'inference_failed',
        ...COMMON_V1,
      ),
    },
  } satisfies ZodOpenApiOperationObject;
}

const modelPaths: ZodOpenApiPathsObject = {
  '/v1/models': {
    get: {
      tags: ['models'],
      summary: 'List models and their versions.',
      security: API_KEY_SECURITY,
      responses: {
        '200': { description: 'Every model.', content: json(ModelListSchema) },
        ...errors(...COMMON_V1),
      },
    },
  },
  '/v1/models/{model}': {
    get: {
      tags: ['models'],
      summary: 'Metadata of the default version (with ETag and Cache-Control).',
      security: API_KEY_SECURITY,
      requestParams: { path: ModelPath },
      responses: {
        '200': { description: 'Model metadata.', content: json(ModelMetadataSchema) },
        '304': { description: 'Not modified (If-None-Match matched the ETag).' },
        ...errors('model_not_found', ...COMMON_V1),
      },
    },
  },
  '/v1/models/{model}/versions/{version}': {
    get: {
      tags: ['models'],
      summary: 'Metadata of one version (with ETag and Cache-Control).',
      security: API_KEY_SECURITY,
      requestParams: { path: ModelVersionPath },
      responses: {
        '200': { description: 'Version metadata.', content: json(ModelMetadataSchema) },
        '304': { description: 'Not modified.' },
        ...errors('model_not_found', 'version_not_found', ...COMMON_V1),
      },
    },
  },
  '/v1/models/{model}/predict': {
    post: predictOp('Predict one instance (`features`) or many (`instances`).', {
      path: ModelPath,
      query: versionQuery,
      header: versionHeader,
    }),
  },
  '/v1/models/{model}:predict': {
    post: predictOp('TF Serving / KServe V1 form of predict.', {
      path: ModelPath,
      query: versionQuery,
      header: versionHeader,
    }),
  },
  '/v1/models/{model}/versions/{version}/predict': {
    post: predictOp('Predict with a pinned version.', {
      path: ModelVersionPath,
      header: waitHeaders,
    }),
  },
};

const jobPaths: ZodOpenApiPathsObject = {
  '/v1/jobs': {
    post: {
      tags: ['jobs'],
      summary: 'Queue an asynchronous job.',
      security: API_KEY_SECURITY,
      requestParams: {
        header: z.object({
          'idempotency-key': z.string().min(1).max(255).optional().meta({
            description: 'A retried submission with the same key returns the first job.',
          }),
        }),
      },
      requestBody: { required: true, content: json(JobBody) },
      responses: {
        '202': accepted,
        ...errors(
          'invalid_json',
          'model_not_found',
          'version_not_found',
          'payload_too_large',
          'unsupported_media_type',
          'validation_error',
          'queue_full',
          ...COMMON_V1,
        ),
      },
    },
  },
  '/v1/jobs/{id}': {
    get: {
      tags: ['jobs'],
      summary: 'Status and result of a job; long-polls with `Prefer: wait=N` or `?wait=N`.',
      security: API_KEY_SECURITY,
      requestParams: { path: IdPath, query: waitQuery, header: waitHeaders },
      responses: {
        '200': { description: 'The job.', content: json(JobViewSchema) },
        ...errors('job_not_found', 'validation_error', ...COMMON_V1),
      },
    },
    delete: {
      tags: ['jobs'],
      summary: 'Cancel a queued job.',
      security: API_KEY_SECURITY,
      requestParams: { path: IdPath },
      responses: {
        '204': { description: 'Cancelled.' },
        ...errors('job_not_found', 'job_not_cancellable', ...COMMON_V1),
      },
    },
  },
  '/v1/jobs/{id}/events': {
    get: {
      tags: ['jobs'],
      summary: 'Server-Sent Events: `status` events, then one `result` or `error` event.',
      security: API_KEY_SECURITY,
      requestParams: { path: IdPath },
      responses: {
        '200': {
          description:
            'An event stream; `data` of `result` is the job view, of `error` `{code, message}`.',
          content: { 'text/event-stream': { schema: z.string() } },
        },
        ...errors('job_not_found', ...COMMON_V1),
      },
    },
  },
};

/** Paths of the own API (/v1). */
export const v1Paths: ZodOpenApiPathsObject = {
  ...modelPaths,
  ...jobPaths,
  ...batchPaths,
  ...livePaths,
};
