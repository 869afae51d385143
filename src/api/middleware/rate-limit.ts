import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { ApiError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { AppEnv } from '../deps.js';
import type { ApiMetrics } from '../metrics.js';
import type { RateLimiter } from '../rate-limiter.js';

function clientIp(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header('x-forwarded-for')?.split(',')[0]?.trim();
    if (forwarded) return forwarded;
  }
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    // In-process requests (app.request) have no socket.
    return 'unknown';
  }
}

/** 429 rate_limited with Retry-After once a client is over its rate; per API key, else per IP. */
export function rateLimit(
  limiter: RateLimiter,
  metrics: ApiMetrics,
  logger: Logger,
  trustProxy: boolean,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const keyId = c.get('apiKeyId');
    const clientId = keyId ? `key-${keyId}` : `ip-${clientIp(c, trustProxy)}`;
    // Fail open: a Redis outage must not also refuse routes that do not need Redis.
    const decision = await limiter.take(clientId).catch((err: unknown) => {
      logger.debug({ err: (err as Error).message }, 'rate limit not checked: Redis unavailable');
      return { allowed: true, retryAfterMs: 0 };
    });
    if (!decision.allowed) {
      metrics.rateLimited.inc();
      throw new ApiError(
        'rate_limited',
        'Too many requests for this API key; retry after the time in Retry-After.',
        undefined,
        Math.max(1, Math.ceil(decision.retryAfterMs / 1000)),
      );
    }
    await next();
  };
}
