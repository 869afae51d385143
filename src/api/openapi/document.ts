import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../deps.js';

/** The OpenAPI document as served by GET /openapi.json. */
export type OpenApiDocument = ReturnType<OpenAPIHono['getOpenAPI31Document']>;

const SECURITY_SCHEMES = {
  bearerKey: { type: 'http', scheme: 'bearer', description: 'An API key of API_KEYS.' },
  headerKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
  queryKey: {
    type: 'apiKey',
    in: 'query',
    name: 'access_token',
    description: 'WebSocket handshake only.',
  },
  metricsBearer: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN.' },
  adminBearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN.' },
  adminBasic: {
    type: 'http',
    scheme: 'basic',
    description: 'Any user name, ADMIN_TOKEN as the password.',
  },
} as const;

/**
 * The OpenAPI 3.1 document of `app`: every route it mounted with its schemas (feature folders'
 * routes.ts), generated from the same zod contracts the handlers answer with.
 */
export function buildOpenApiDocument(app: OpenAPIHono<AppEnv>): OpenApiDocument {
  const document = app.getOpenAPI31Document({
    openapi: '3.1.0',
    info: {
      title: 'inferq',
      version: '0.1.0',
      description:
        'Queue-backed ONNX inference: online predictions, asynchronous jobs, batches, a live ' +
        'WebSocket feed and the Open Inference Protocol (/v2). Errors of the own API use the ' +
        '`Error` envelope; /v2 errors are `{"error": "..."}`. With API_KEYS set, /v1 and /v2 ' +
        'need `Authorization: Bearer <key>` or `X-API-Key: <key>`. Streams (NDJSON, ' +
        'Server-Sent Events, WebSocket) give the schema of one line, event or message.',
    },
    tags: [
      { name: 'models' },
      { name: 'predict' },
      { name: 'jobs' },
      { name: 'batches' },
      { name: 'live' },
      { name: 'v2', description: 'Open Inference Protocol (KServe V2 / Triton HTTP).' },
      { name: 'operations' },
      { name: 'admin' },
    ],
  });
  return {
    ...document,
    components: { ...document.components, securitySchemes: { ...SECURITY_SCHEMES } },
  };
}
