import { Hono } from 'hono';
import type { ApiDeps, AppEnv } from '../deps.js';
import { tokenGuard } from '../http/api-key-auth.js';

/** GET /metrics: Prometheus text exposition of this API process (METRICS_TOKEN guards it when set). */
export function metricsRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { registry } = deps.metrics;
  if (deps.config.METRICS_TOKEN)
    app.use('/metrics', tokenGuard(deps.config.METRICS_TOKEN, 'metrics'));
  app.get('/metrics', async (c) => {
    const text = await registry.metrics();
    c.header('Cache-Control', 'no-store');
    return c.body(text, 200, { 'Content-Type': registry.contentType });
  });
  return app;
}
