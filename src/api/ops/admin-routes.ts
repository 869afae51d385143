import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import { createRoute } from '@hono/zod-openapi';
import type { Hono } from 'hono';
import { z } from 'zod';
import { ReloadResultSchema, type ReloadResult } from '../../shared/contracts/ops.js';
import { publishReload } from '../../shared/reload-signal.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { tokenGuard } from '../http/api-key-auth.js';
import { ADMIN_SECURITY, errors, json } from '../openapi/common.js';
import { documentOnly, mount, routeApp, type RouteApp } from '../openapi/route.js';

/** Mount path of Bull Board; its adapter's base path must equal it. */
export const BOARD_PATH = '/admin/queues';

const BoardRoute = createRoute({
  method: 'get',
  path: BOARD_PATH,
  tags: ['admin'],
  summary: 'Bull Board (only when ADMIN_TOKEN is set; its assets and API live below this path).',
  security: ADMIN_SECURITY,
  responses: {
    200: { description: 'HTML.', content: { 'text/html': { schema: z.string() } } },
    ...errors('unauthorized', 'not_found'),
  },
});

const ReloadRoute = createRoute({
  method: 'post',
  path: '/admin/models/reload',
  tags: ['admin'],
  summary: 'Rescan MODEL_DIR here and tell every API replica and worker to do the same.',
  security: ADMIN_SECURITY,
  responses: {
    200: { description: 'What changed.', content: json(ReloadResultSchema) },
    ...errors('unauthorized', 'not_found', 'unavailable'),
  },
});

/**
 * /admin: Bull Board and the model reload call, behind ADMIN_TOKEN (Bearer, or Basic with the
 * token as password so a browser's login prompt works). Mounted only when ADMIN_TOKEN is set.
 */
export function adminRoutes(deps: ApiDeps): RouteApp {
  const { config, repository, redis, keys } = deps;
  const app = routeApp();
  app.use('/admin/*', tokenGuard(config.ADMIN_TOKEN, 'inferq'));

  const board = new HonoAdapter(serveStatic).setBasePath(BOARD_PATH);
  createBullBoard({
    // Every shard queue of both queues (QUEUE_SHARDS), each named after its shard.
    queues: [deps.queue.shards, deps.batchQueue.shards].flatMap((shards) =>
      shards.map(
        (q, i) =>
          new BullMQAdapter(q, {
            readOnlyMode: config.ADMIN_READ_ONLY,
            ...(shards.length > 1
              ? { prefix: `s${i}-`, displayName: `${q.name} (shard ${i} of ${shards.length})` }
              : {}),
          }),
      ),
    ),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'inferq' } },
  });
  app.route(BOARD_PATH, board.registerPlugin() as unknown as Hono<AppEnv>);
  documentOnly(app, BoardRoute);

  mount(app, ReloadRoute, async (c) => {
    const { added, removed } = await repository.reload();
    // Workers and the other API replicas rescan when they hear this.
    const notified = await publishReload(redis, keys.modelsReloadChannel());
    const body: ReloadResult = {
      added,
      removed,
      notified,
      models: repository.list().map((m) => ({
        name: m.name,
        versions: m.versions.map((v) => v.version),
        default: m.default,
      })),
    };
    return c.json(body);
  });
  return app;
}
