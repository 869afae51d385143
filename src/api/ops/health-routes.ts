import { createRoute } from '@hono/zod-openapi';
import type { z } from 'zod';
import { LiveSchema, ReadySchema, UnavailableSchema } from '../../shared/contracts/ops.js';
import type { ApiDeps } from '../deps.js';
import { json, RETRY_AFTER } from '../openapi/common.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';

const LiveRoute = createRoute({
  method: 'get',
  path: '/health/live',
  tags: ['operations'],
  summary: 'Liveness, without dependency checks.',
  responses: { 200: { description: 'Alive.', content: json(LiveSchema) } },
});

const ReadyRoute = createRoute({
  method: 'get',
  path: '/health/ready',
  tags: ['operations'],
  summary: 'Readiness: Redis reachable and models found.',
  responses: {
    200: { description: 'Ready.', content: json(ReadySchema) },
    503: { description: 'Not ready.', headers: RETRY_AFTER, content: json(UnavailableSchema) },
  },
});

/** Liveness and readiness. */
export function healthRoutes(deps: ApiDeps): RouteApp {
  const app = routeApp();

  mount(app, LiveRoute, (c) => c.json({ status: 'ok' } satisfies z.infer<typeof LiveSchema>));

  mount(app, ReadyRoute, async (c) => {
    c.header('Cache-Control', 'no-store');
    const unavailable = (reason: string) => {
      c.header('Retry-After', '1');
      const body: z.infer<typeof UnavailableSchema> = { status: 'unavailable', reason };
      return c.json(body, 503);
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
      const body: z.infer<typeof ReadySchema> = {
        status: 'ready',
        redis: 'ok',
        models: deps.repository.size,
        workers,
        queueDepth: depth,
      };
      return c.json(body);
    } catch (err) {
      return unavailable(`redis unreachable: ${(err as Error).message}`);
    }
  });

  return app;
}
