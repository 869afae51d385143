import { OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { z } from 'zod';
import { validationError } from '../../shared/schemas.js';
import { headerOf } from '../http/node-request.js';
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
 * Serves `route` with `handler` and adds it to the document. Query, path and headers are
 * checked against the route's schemas in that order, as @hono/zod-openapi's validators would
 * (a failure is the API's 422 `validation_error`, thrown for app.onError to render), but here:
 * each of those validators reads the request's Content-Type through a web Headers of the whole
 * request, which @hono/node-server then keeps for as long as the connection is open (a
 * kilobyte for each of 10,000 long-polls); headers are read from Node's request instead. The
 * body is only documented here: handlers read it with the size-limited readers of http/ and
 * parse it with the same schema.
 */
export function mount(
  app: RouteApp,
  route: RouteConfig,
  handler: RouteHandler,
  options: MountOptions = {},
): void {
  app.openAPIRegistry.registerPath(route);
  const checks = requestChecks(route);
  const serve: RouteHandler =
    checks.length === 0
      ? handler
      : async (c) => {
          for (const check of checks) {
            const result = check.schema.safeParse(check.read(c));
            if (result.success) continue;
            await options.exists?.(c);
            throw validationError(result.error);
          }
          return handler(c);
        };
  // The handler is typed by the contracts' bodies, not by OpenAPIHono's inference.
  app.openapi({ ...route, request: undefined, hide: true }, serve as never);
}

interface RequestCheck {
  schema: z.ZodType;
  read: (c: Context<AppEnv>) => unknown;
}

// The checks of a route's query, path and headers, read as Hono's validators read them.
function requestChecks(route: RouteConfig): RequestCheck[] {
  const { params, query, headers } = route.request ?? {};
  if (headers && !('shape' in headers))
    throw new Error(`${route.path}: give headers as one object schema`);
  const checks: RequestCheck[] = [];
  if (query) {
    checks.push({
      schema: query,
      read: (c) => {
        const all = Object.entries(c.req.queries());
        return Object.fromEntries(all.map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
      },
    });
  }
  if (params) checks.push({ schema: params, read: (c) => c.req.param() });
  if (headers) {
    // Only the headers the schema names (it ignores the others), by their lower-case names.
    const names = Object.keys(headers.shape);
    checks.push({
      schema: headers,
      read: (c) => {
        const out: Record<string, string> = {};
        for (const name of names) {
          const value = headerOf(c, name.toLowerCase());
          if (value !== undefined) out[name] = value;
        }
        return out;
      },
    });
  }
  return checks;
}

/** Adds a route served by other means (an alias, a WebSocket upgrade, a mounted UI). */
export function documentOnly(app: RouteApp, route: RouteConfig): void {
  app.openAPIRegistry.registerPath(route);
}
