import { randomUUID } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { ApiDeps, AppEnv } from '../deps.js';
import { headerOf } from './node-request.js';
import { bodyUnread, closeAfterBody } from './unread-body.js';

/*
 * What every request gets around its route, in one middleware: a request id, Server-Timing,
 * the HTTP metrics, the request log line, and a safe end for keep-alive connections. One frame
 * instead of five middlewares (hono's requestId and timing among them) because on a cache hit
 * the chain itself was a large part of the request: each layer an async closure, and every
 * header set before the answer turned the response's plain header object into a web Headers.
 * A route that builds its answer with `respondJson` gets the frame's headers in a plain object
 * (the cheapest answer @hono/node-server writes); any other answer gets them added here.
 */

/** What the frame keeps of one request. */
export interface Frame {
  readonly id: string;
  readonly started: number;
  /** Server-Timing entries added by the route (`addTiming`), in order. */
  readonly timings: string[];
  /**
   * The answer respondJson made (it carries the frame's headers already) and its body text, so
   * that compression can judge its size without opening it (@hono/node-server would then build
   * a full web Response for it).
   */
  json: Response | undefined;
  jsonText: string | undefined;
}

/** A client's X-Request-Id is kept when short and made of word characters, `-` and `=`. */
const ID_MAX = 200;
const ID_UNSAFE = /[^\w\-=]/;

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

/** Adds a Server-Timing entry `name;dur=<ms>` to the answer of the request in `c`. */
export function addTiming(c: Context<AppEnv>, name: string, ms: number): void {
  c.get('frame')?.timings.push(`${name};dur=${ms.toFixed(1)}`);
}

function serverTiming(frame: Frame): string {
  const total = `total;dur=${(performance.now() - frame.started).toFixed(1)};desc="total"`;
  return frame.timings.length ? `${frame.timings.join(',')},${total}` : total;
}

/** The body text of the request's answer, if respondJson made it. */
export function respondedJson(c: Context): string | undefined {
  const frame = c.get('frame') as Frame | undefined;
  return frame && frame.json === c.res ? frame.jsonText : undefined;
}

/**
 * A JSON answer with the frame's headers in one plain object: no web Headers is built for it.
 * For routes on the hot path; others answer with `c.json` as usual.
 */
export function respondJson(
  c: Context<AppEnv>,
  body: unknown,
  status = 200,
  extra?: Record<string, string>,
): Response {
  const frame = c.get('frame');
  const headers: Record<string, string> = { ...extra, 'content-type': 'application/json' };
  const text = JSON.stringify(body);
  if (!frame) return new Response(text, { status, headers });
  headers['server-timing'] = serverTiming(frame);
  headers['x-request-id'] = frame.id;
  frame.json = new Response(text, { status, headers });
  frame.jsonText = text;
  return frame.json;
}

/**
 * The frame: request id (the client's X-Request-Id when safe, else a UUID), Server-Timing with
 * the route's entries and the total, one count and duration per method, route pattern and
 * status, one info log line, and `Connection: close` where the connection must end (a body
 * left unread, or shutdown under way).
 */
export function requestFrame(deps: ApiDeps): MiddlewareHandler<AppEnv> {
  const { metrics, logger } = deps;
  return async (c, next) => {
    const asked = headerOf(c, 'x-request-id');
    const id = asked && asked.length <= ID_MAX && !ID_UNSAFE.test(asked) ? asked : randomUUID();
    const frame: Frame = {
      id,
      started: performance.now(),
      timings: [],
      json: undefined,
      jsonText: undefined,
    };
    c.set('requestId', id);
    c.set('frame', frame);
    await next();
    if (frame.json === undefined) {
      c.res.headers.set('X-Request-Id', id);
      c.res.headers.append('Server-Timing', serverTiming(frame));
    }
    // A refused body must not cost the client's next request on the socket: see closeAfterBody.
    if (bodyUnread(c)) c.res = await closeAfterBody(c);
    // Keep-alive clients would otherwise keep server.close() waiting until the shutdown timeout:
    // once shutdown began, every answer closes its connection, those of requests admitted before too.
    else if (deps.isShuttingDown()) c.header('Connection', 'close');
    const ms = performance.now() - frame.started;
    const route = routeOf(c);
    const status = c.res.status;
    metrics.http(c.req.method, route, status, ms / 1000);
    // The query string is left out of the log: it may carry an `access_token`.
    if (logger.isLevelEnabled('info')) {
      logger.info(
        {
          requestId: id,
          method: c.req.method,
          route,
          path: c.req.path,
          status,
          ms: Math.round(ms * 100) / 100,
        },
        'request',
      );
    }
  };
}
