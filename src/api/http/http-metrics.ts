import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { ApiMetrics } from '../ops/api-metrics.js';

/**
 * The route pattern that answered (`/v1/jobs/:id`), never the raw path, so label values stay
 * few; `unmatched` when only middleware matched (a 404, or a request refused before routing).
 */
export function routeOf(c: Context): string {
  const routes = matchedRoutes(c);
  // Handlers come after the middleware that wraps them, in registration order.
  for (let i = routes.length - 1; i >= 0; i--) {
    const route = routes[i];
    if (route && route.method !== 'ALL' && route.path !== '*' && route.path !== '/*') {
      return route.path;
    }
  }
  return 'unmatched';
}

/** Counts and times every request by method, route pattern and status. */
export function httpMetrics(metrics: ApiMetrics): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const labels = { method: c.req.method, route: routeOf(c), status: String(c.res.status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, (performance.now() - started) / 1000);
  };
}
