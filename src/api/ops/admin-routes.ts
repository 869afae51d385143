import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { publishReload } from '../../shared/reload-signal.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { tokenGuard } from '../http/api-key-auth.js';

/** Mount path of Bull Board; its adapter's base path must equal it. */
export const BOARD_PATH = '/admin/queues';

/**
 * /admin: Bull Board and the model reload call, behind ADMIN_TOKEN (Bearer, or Basic with the
 * token as password so a browser's login prompt works). Mounted only when ADMIN_TOKEN is set.
 */
export function adminRoutes(deps: ApiDeps): Hono<AppEnv> {
  const { config, repository, redis, keys } = deps;
  const app = new Hono<AppEnv>();
  app.use('/admin/*', tokenGuard(config.ADMIN_TOKEN, 'inferq'));

  const board = new HonoAdapter(serveStatic).setBasePath(BOARD_PATH);
  createBullBoard({
    queues: [deps.queue, deps.batches.queue].map(
      (q) => new BullMQAdapter(q, { readOnlyMode: config.ADMIN_READ_ONLY }),
    ),
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'inferq' } },
  });
  app.route(BOARD_PATH, board.registerPlugin() as unknown as Hono<AppEnv>);

  app.post('/admin/models/reload', async (c) => {
    const { added, removed } = await repository.reload();
    // Workers and the other API replicas rescan when they hear this.
    const notified = await publishReload(redis, keys.modelsReloadChannel());
    return c.json({
      added,
      removed,
      notified,
      models: repository.list().map((m) => ({
        name: m.name,
        versions: m.versions.map((v) => v.version),
        default: m.default,
      })),
    });
  });
  return app;
}
