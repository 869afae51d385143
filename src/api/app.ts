import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ApiError, errorBody } from '../shared/errors.js';
import { isUnavailableError } from '../shared/redis.js';
import type { ApiDeps, AppEnv } from './deps.js';
import { refuseWhileShuttingDown } from './http/shutdown-drain.js';
import { limitBody, limitDeclared } from './http/request-body.js';
import { requestFrame } from './http/request-frame.js';
import { operationsRoutes, useOperations } from './ops/operator-wiring.js';
import { batchRoutes } from './batches/routes.js';
import { isNdjsonBatchUpload } from './batches/upload-request.js';
import { healthRoutes } from './ops/health-routes.js';
import { jobRoutes } from './jobs/routes.js';
import { modelRoutes } from './models/routes.js';
import { predictRoutes } from './predict/routes.js';
import { jobEventRoutes } from './jobs/event-routes.js';
import { v2Routes } from './v2/routes.js';
import { isV2Path, v2ErrorBody, v2Status } from './v2/v2-errors.js';

/** Methods whose requests carry a body to limit. */
const HAS_BODY = new Set(['POST', 'PUT', 'PATCH']);

function render(c: Context<AppEnv>, err: ApiError): Response {
  if (err.retryAfterS !== undefined) c.header('Retry-After', String(err.retryAfterS));
  // The Open Inference Protocol has its own error form: {"error": "<message>"}.
  if (isV2Path(c.req.path)) return c.json(v2ErrorBody(err), v2Status(err) as 400);
  return c.json(errorBody(err), err.status as 400);
}

// An HTTPException from hono's own middleware (e.g. a malformed request) keeps its 4xx status.
function fromHttpException(err: HTTPException): ApiError {
  if (err.status === 413) return new ApiError('payload_too_large');
  if (err.status === 415) return new ApiError('unsupported_media_type');
  if (err.status === 401) return new ApiError('unauthorized');
  if (err.status >= 400 && err.status < 500)
    return new ApiError('validation_error', err.message || undefined);
  return new ApiError('internal_error');
}

/**
 * Builds the HTTP app: every route, one error renderer. Routes carry their OpenAPI definitions
 * (feature folders' routes.ts); /openapi.json is generated from what is mounted here.
 */
export function createApp(deps: ApiDeps): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ strict: false });
  const { logger } = deps;

  // Request id, Server-Timing, HTTP metrics, request log, connection end.
  app.use('*', requestFrame(deps));
  // API keys (/v1, /v2), rate limit, compression.
  useOperations(app, deps);
  // Refused while shutting down, then the body limits: one layer that only looks and passes on
  // (not async), as every layer of the chain is a cost of each cache hit.
  const { MAX_BODY_BYTES, MAX_BATCH_BYTES } = deps.config;
  const admit: MiddlewareHandler<AppEnv> = (c, next) => {
    refuseWhileShuttingDown(c, deps.isShuttingDown);
    if (HAS_BODY.has(c.req.method)) {
      // NDJSON batch uploads are streamed, bounded while read by MAX_BATCH_BYTES, MAX_BATCH_ROWS
      // and MAX_LINE_BYTES; a declared length over MAX_BATCH_BYTES is refused before reading.
      if (isNdjsonBatchUpload(c)) limitDeclared(c, MAX_BATCH_BYTES, 'MAX_BATCH_BYTES');
      else limitBody(c, MAX_BODY_BYTES);
    }
    return next();
  };
  app.use('*', admit);

  app.route('/', healthRoutes(deps));
  // /metrics, /openapi.json, /docs, /admin (with ADMIN_TOKEN).
  operationsRoutes(app, deps);
  app.route('/', modelRoutes(deps));
  app.route('/', predictRoutes(deps));
  app.route('/', jobRoutes(deps));
  app.route('/', jobEventRoutes(deps));
  app.route('/', v2Routes(deps));
  app.route('/', batchRoutes(deps));

  app.notFound((c) =>
    render(c, new ApiError('not_found', `No route ${c.req.method} ${c.req.path}.`)),
  );
  app.onError((err, c) => {
    if (err instanceof ApiError) return render(c, err);
    if (err instanceof HTTPException) return render(c, fromHttpException(err));
    if (deps.redis.status !== 'ready' || isUnavailableError(err)) {
      logger.warn({ requestId: c.get('requestId'), err: err.message }, 'redis unavailable');
      return render(
        c,
        new ApiError('unavailable', 'Redis is unreachable; retry shortly.', undefined, 1),
      );
    }
    logger.error({ requestId: c.get('requestId'), err }, 'unhandled error');
    return render(c, new ApiError('internal_error'));
  });
  return app;
}
