import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { ApiError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { AppEnv } from '../deps.js';
import type { ApiMetrics } from '../ops/api-metrics.js';
import type { RateDecision, RateLimiter } from './rate-limiter.js';
import { headerOf } from './node-request.js';

/** Where the client IP of a rate limit comes from. */
export interface ClientIpOptions {
  /** Read X-Forwarded-For (TRUST_PROXY). */
  trustProxy: boolean;
  /** Proxies that append to X-Forwarded-For (TRUST_PROXY_HOPS): the IP is this many from the right. */
  proxyHops: number;
}

// Longest X-Forwarded-For entry kept: an IPv6 address with a zone fits; more is not an address.
const MAX_IP_LENGTH = 64;

/**
 * The client IP of a request. Behind trusted proxies each appends the address it got the
 * request from, so only the entries they wrote can be believed: the one `proxyHops` from the
 * right. Whatever a client puts on the left of the header is ignored.
 */
export function clientIp(c: Context, options: ClientIpOptions): string {
  if (options.trustProxy) {
    const entries = (headerOf(c, 'x-forwarded-for') ?? '')
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e.length > 0);
    const entry = entries[Math.max(0, entries.length - options.proxyHops)];
    if (entry) return entry.slice(0, MAX_IP_LENGTH);
  }
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    // In-process requests (app.request) have no socket.
    return 'unknown';
  }
}

/** The rate-limit identity of a request: its API key (SHA-256), else its client IP. */
export function rateLimitClientId(c: Context<AppEnv>, options: ClientIpOptions): string {
  const keyId = c.get('apiKeyId');
  return keyId ? `key-${keyId}` : `ip-${clientIp(c, options)}`;
}

/** The error of a refused request: 429 rate_limited with Retry-After. */
export function rateLimitedError(retryAfterMs: number): ApiError {
  const retryAfterS = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ApiError(
    'rate_limited',
    `Too many requests for this API key; retry in ${retryAfterS} s (Retry-After).`,
    undefined,
    retryAfterS,
  );
}

/**
 * Charges the messages of a long-lived connection (a WebSocket) to `clientId`'s rate, the same
 * budget as its HTTP requests. Fails open like the middleware: a Redis outage refuses nothing.
 */
export function messageCharge(
  limiter: RateLimiter,
  logger: Logger,
  clientId: string,
): () => Promise<RateDecision> {
  return () =>
    limiter.take(clientId).catch((err: unknown) => {
      logger.debug({ err: (err as Error).message }, 'rate limit not checked: Redis unavailable');
      return { allowed: true, retryAfterMs: 0 };
    });
}

/** 429 rate_limited with Retry-After once a client is over its rate; per API key, else per IP. */
export function rateLimit(
  limiter: RateLimiter,
  metrics: ApiMetrics,
  logger: Logger,
  ipOptions: ClientIpOptions,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const clientId = rateLimitClientId(c, ipOptions);
    // Fail open: a Redis outage must not also refuse routes that do not need Redis.
    const decision = await limiter.take(clientId).catch((err: unknown) => {
      logger.debug({ err: (err as Error).message }, 'rate limit not checked: Redis unavailable');
      return { allowed: true, retryAfterMs: 0 };
    });
    if (!decision.allowed) {
      metrics.rateLimited.inc();
      throw rateLimitedError(decision.retryAfterMs);
    }
    await next();
  };
}
