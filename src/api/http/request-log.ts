import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../../shared/logger.js';
import type { AppEnv } from '../deps.js';
import { routeOf } from './http-metrics.js';

/**
 * One info line per request: method, route pattern, path, status, milliseconds and request id.
 * The query string is left out: it may carry an `access_token`.
 */
export function requestLog(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const ms = Math.round((performance.now() - started) * 100) / 100;
    logger.info(
      {
        requestId: c.get('requestId'),
        method: c.req.method,
        route: routeOf(c),
        path: c.req.path,
        status: c.res.status,
        ms,
      },
      'request',
    );
  };
}
