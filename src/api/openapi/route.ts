import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { z } from 'zod';
import { validationError } from '../../shared/schemas.js';
import type { AppEnv } from '../deps.js';

/** A feature's routes: a Hono app that also collects each route's OpenAPI definition. */
export type RouteApp = OpenAPIHono<AppEnv>;

/** A new, empty RouteApp. */
export function routeApp(): RouteApp {
  return new OpenAPIHono<AppEnv>();
}

/** What a route answers; handlers build typed bodies with the contracts' z.infer types. */
export type RouteHandler = (c: Context<AppEnv>) => Response | Promise<Response>;

/** Options of `mount`. */
export interface MountOptions {
  /**
   * Runs before a failed check of the path, query or headers is answered with 422: throws the
   * route's 404 when what the path names does not exist, as the handler would have.
   */
  exists?: (c: Context<AppEnv>) => unknown;
}

/**
 * Serves `route` with `handler` and adds it to the document. Path, query and headers are
 * checked by @hono/zod-openapi against the route's schemas (a failure is the API's 422
 * `validation_error`, thrown for app.onError to render). The body is only documented here:
 * handlers read it with the size-limited readers of http/ and parse it with the same schema.
 */
export function mount(
  app: RouteApp,
  route: RouteConfig,
  handler: RouteHandler,
  options: MountOptions = {},
): void {
  app.openAPIRegistry.registerPath(route);
  const { params, query, headers } = route.request ?? {};
  const checked: RouteConfig = { ...route, request: { params, query, headers } };
  const hook = async (result: { success: boolean; error?: unknown }, c: Context<AppEnv>) => {
    if (result.success) return;
    await options.exists?.(c);
    throw validationError(result.error as z.ZodError);
  };
  // The handler and hook are typed by the contracts' bodies, not by OpenAPIHono's inference.
  app.openapi({ ...checked, hide: true }, handler as never, hook as never);
}

/** Adds a route served by other means (an alias, a WebSocket upgrade, a mounted UI). */
export function documentOnly(app: RouteApp, route: RouteConfig): void {
  app.openAPIRegistry.registerPath(route);
}
