import { createRoute } from '@hono/zod-openapi';
import { z } from 'zod';
import type { ApiDeps } from '../deps.js';
import { tokenGuard } from '../http/api-key-auth.js';
import { errors } from '../openapi/common.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';

const MetricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  tags: ['operations'],
  summary: 'Prometheus text exposition of this API process.',
  security: [{ metricsBearer: [] }, {}],
  responses: {
    200: {
      description: 'Metrics (Prometheus text format 0.0.4).',
      content: { 'text/plain': { schema: z.string() } },
    },
    ...errors('unauthorized'),
  },
});

/** GET /metrics: Prometheus text exposition of this API process (METRICS_TOKEN guards it when set). */
export function metricsRoutes(deps: ApiDeps): RouteApp {
  const app = routeApp();
  const { registry } = deps.metrics;
  if (deps.config.METRICS_TOKEN)
    app.use('/metrics', tokenGuard(deps.config.METRICS_TOKEN, 'metrics'));
  mount(app, MetricsRoute, async (c) => {
    const text = await registry.metrics();
    c.header('Cache-Control', 'no-store');
    return c.body(text, 200, { 'Content-Type': registry.contentType });
  });
  return app;
}
