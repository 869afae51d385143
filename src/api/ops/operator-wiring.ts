import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Hono, MiddlewareHandler } from 'hono';
import type { ApiDeps, AppEnv } from '../deps.js';
import { apiKeyAuth } from '../http/api-key-auth.js';
import { compressLarge } from '../http/compress.js';
import { rateLimit } from '../http/rate-limit.js';
import { RateLimiter } from '../http/rate-limiter.js';
import { adminRoutes } from './admin-routes.js';
import { docsRoutes } from './docs-routes.js';
import { metricsRoutes } from './metrics-route.js';

/** Paths that need an API key (when API_KEYS is set) and count against the rate limit. */
const GUARDED = ['/v1/*', '/v2/*'];

// Health probes stay open under /v2 too: orchestrators call them without credentials.
const isHealth = (path: string) => path.startsWith('/v2/health/');

function exceptHealth(handler: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  return (c, next) => (isHealth(c.req.path) ? next() : handler(c, next));
}

/**
 * Installs the operator middleware, in order: metrics, request log, API-key auth, rate limit,
 * compression. Goes after request id and timing, before body limits and routes.
 */
export function useOperations(app: Hono<AppEnv>, deps: ApiDeps): void {
  const { config, metrics, logger } = deps;
  if (config.API_KEYS.length > 0) {
    const auth = exceptHealth(apiKeyAuth(config.API_KEYS));
    for (const path of GUARDED) app.use(path, auth);
  }
  if (config.RATE_LIMIT_RPS > 0) {
    const limiter = new RateLimiter(
      deps.redis,
      deps.keys,
      config.RATE_LIMIT_RPS,
      config.RATE_LIMIT_BURST,
    );
    const ipOptions = { trustProxy: config.TRUST_PROXY, proxyHops: config.TRUST_PROXY_HOPS };
    const limit = exceptHealth(rateLimit(limiter, metrics, logger, ipOptions));
    for (const path of GUARDED) app.use(path, limit);
  }
  app.use('*', compressLarge(1024));
}

/** The operator routes: /metrics, /openapi.json, /docs and (with ADMIN_TOKEN) /admin. */
export function operationsRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.route('/', metricsRoutes(deps));
  app.route('/', docsRoutes(app));
  if (deps.config.ADMIN_TOKEN) app.route('/', adminRoutes(deps));
}
