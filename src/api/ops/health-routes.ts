import { Hono } from 'hono';
import type { ApiDeps, AppEnv } from '../deps.js';

/** Liveness and readiness. */
export function healthRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/health/live', (c) => c.json({ status: 'ok' }));

  app.get('/health/ready', async (c) => {
    c.header('Cache-Control', 'no-store');
    const unavailable = (reason: string) => {
      c.header('Retry-After', '1');
      return c.json({ status: 'unavailable', reason }, 503);
    };
    if (deps.isShuttingDown()) return unavailable('shutting down');
    if (deps.repository.size === 0)
      return unavailable(`no models found in ${deps.config.MODEL_DIR}`);
    try {
      await deps.redis.ping();
      const [workers, depth] = await Promise.all([
        deps.queue.getWorkersCount(),
        deps.depth.refresh(),
      ]);
      return c.json({
        status: 'ready',
        redis: 'ok',
        models: deps.repository.size,
        workers,
        queueDepth: depth,
      });
    } catch (err) {
      return unavailable(`redis unreachable: ${(err as Error).message}`);
    }
  });

  return app;
}
