import type { Context, MiddlewareHandler } from 'hono';
import { ApiError } from '../../shared/errors.js';
import { credentialOf, digestOf, secretMatches } from '../../shared/secrets.js';
import type { AppEnv } from '../deps.js';
import { headerOf } from './node-request.js';

/** The API key a request carries: Bearer, X-API-Key, or `?access_token=` on the WebSocket handshake. */
function apiKeyOf(c: Context): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(headerOf(c, 'authorization') ?? '');
  const header = m?.[1]?.trim() || headerOf(c, 'x-api-key');
  if (header) return header;
  // Browsers cannot set headers on a WebSocket handshake.
  if (c.req.path === '/v1/ws') return c.req.query('access_token') || undefined;
  return undefined;
}

/**
 * Requires one of `keys` on every request it guards (401 unauthorized otherwise) and records
 * the key's SHA-256 as `apiKeyId` for the rate limiter; the key itself is never stored.
 */
export function apiKeyAuth(keys: readonly string[]): MiddlewareHandler<AppEnv> {
  const expected = keys.map(digestOf);
  return async (c, next) => {
    const key = apiKeyOf(c);
    if (key === undefined || !secretMatches(key, expected)) {
      c.header('WWW-Authenticate', 'Bearer realm="inferq"');
      throw new ApiError(
        'unauthorized',
        key === undefined
          ? 'Send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>".'
          : 'The API key is not valid.',
      );
    }
    c.set('apiKeyId', digestOf(key).toString('hex'));
    await next();
  };
}

/**
 * Requires `token` as a Bearer token or as the password of Basic auth (any user name), so a
 * browser can log in through its own prompt (`realm` names it). Guards /admin and /metrics.
 */
export function tokenGuard(token: string, realm: string): MiddlewareHandler<AppEnv> {
  const expected = [digestOf(token)];
  return async (c, next) => {
    const given = credentialOf(headerOf(c, 'authorization'));
    if (given === undefined || !secretMatches(given, expected)) {
      c.header('WWW-Authenticate', `Basic realm="${realm}", charset="UTF-8"`);
      throw new ApiError(
        'unauthorized',
        'Send the token as "Authorization: Bearer <token>" or as the Basic auth password.',
      );
    }
    await next();
  };
}
