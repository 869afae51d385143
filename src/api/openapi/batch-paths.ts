import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { BatchQuerySchema, BatchRequestSchema, MAX_JSON_BATCH_ITEMS } from '../../shared/batches.js';
import { LiveRequestSchema } from '../../shared/ws-schemas.js';
import {
  API_KEY_SECURITY,
  COMMON_V1,
  errors,
  IdPath,
  json,
  waitHeaders,
  waitQuery,
} from './common.js';
import {
  BatchAcceptedSchema,
  BatchItemSchema,
  BatchResultLineSchema,
  BatchViewSchema,
  LiveAnswerSchema,
} from './schemas.js';

// Items are checked one by one against the model (checkItem); this is their documented shape.
const BatchBody = BatchRequestSchema.extend({
  items: z.array(BatchItemSchema).min(1).max(MAX_JSON_BATCH_ITEMS),
}).meta({
  id: 'BatchRequest',
});

/** Paths of batches (/v1/batches). */
export const batchPaths: ZodOpenApiPathsObject = {
  '/v1/batches': {
    post: {
      tags: ['batches'],
      summary:
        'Submit a batch: JSON (up to 10,000 items) or NDJSON (streamed, up to MAX_BATCH_ROWS lines).',
      description:
        'NDJSON uploads name the model in the query (`?model=&version=&priority=`); a line that fails validation rejects the batch with 422 naming it in `details[].line`.',
      security: API_KEY_SECURITY,
      requestParams: { query: BatchQuerySchema.partial() },
      requestBody: {
        required: true,
        content: {
          'application/json': { schema: BatchBody },
          // One item per line.
          'application/x-ndjson': { schema: BatchItemSchema },
        },
      },
      responses: {
        '202': {
          description: 'Queued.',
          headers: z.object({ Location: z.string() }),
          content: json(BatchAcceptedSchema),
        },
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
  '/v1/batches/{id}': {
    get: {
      tags: ['batches'],
      summary: 'Progress of a batch; long-polls with `Prefer: wait=N` or `?wait=N`.',
      security: API_KEY_SECURITY,
      requestParams: { path: IdPath, query: waitQuery, header: waitHeaders },
      responses: {
        '200': { description: 'The batch.', content: json(BatchViewSchema) },
        ...errors('batch_not_found', 'validation_error', ...COMMON_V1),
      },
    },
    delete: {
      tags: ['batches'],
      summary: 'Cancel the rows of a batch that have not started.',
      security: API_KEY_SECURITY,
      requestParams: { path: IdPath },
      responses: {
        '204': { description: 'Cancelled.' },
        ...errors('batch_not_found', ...COMMON_V1),
      },
    },
  },
  '/v1/batches/{id}/results': {
    get: {
      tags: ['batches'],
      summary: 'NDJSON results in submission order; streams while the batch runs.',
      security: API_KEY_SECURITY,
      requestParams: { path: IdPath },
      responses: {
        '200': {
          description: 'One line per item.',
          content: { 'application/x-ndjson': { schema: BatchResultLineSchema } },
        },
        ...errors('batch_not_found', ...COMMON_V1),
      },
    },
  },
  '/v1/batches/{id}/events': {
    get: {
      tags: ['batches'],
      summary: 'Server-Sent Events: `progress` events with the batch view, then `done`.',
      security: API_KEY_SECURITY,
      requestParams: { path: IdPath },
      responses: {
        '200': {
          description: 'An event stream.',
          content: { 'text/event-stream': { schema: z.string() } },
        },
        ...errors('batch_not_found', ...COMMON_V1),
      },
    },
  },
};

/** Path of the live feed (/v1/ws). */
export const livePaths: ZodOpenApiPathsObject = {
  '/v1/ws': {
    get: {
      tags: ['live'],
      summary:
        'WebSocket live feed: send LiveRequest messages, receive LiveAnswer messages by `ref`.',
      description:
        'Browsers may pass the API key as `?access_token=`. A malformed message gets a failed answer and the socket stays open.',
      security: [...API_KEY_SECURITY, { queryKey: [] }],
      requestParams: {
        header: z.object({ upgrade: z.literal('websocket') }),
        query: z.object({ access_token: z.string().optional() }),
      },
      requestBody: {
        description: 'Messages the client sends (one JSON object per text frame).',
        content: json(LiveRequestSchema.meta({ id: 'LiveRequest' })),
      },
      responses: {
        '101': {
          description: 'Switched to WebSocket; answers are LiveAnswer messages.',
          content: json(LiveAnswerSchema),
        },
        ...errors('validation_error', ...COMMON_V1),
      },
    },
  },
};
