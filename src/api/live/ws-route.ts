import { createNodeWebSocket } from '@hono/node-ws';
import type { ServerType } from '@hono/node-server';
import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { Context, Hono } from 'hono';
import { z } from 'zod';
import { LiveAnswerSchema } from '../../shared/contracts/live.js';
import { ApiError } from '../../shared/errors.js';
import { LiveRequestSchema } from '../../shared/ws-schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { LiveSession } from './live-session.js';
import { messageCharge, rateLimitClientId } from '../http/rate-limit.js';
import { RateLimiter, type RateDecision } from '../http/rate-limiter.js';
import { ownerOf } from '../http/owner.js';
import { API_KEY_SECURITY, COMMON_V1, errors, json } from '../openapi/common.js';

const LiveRoute = createRoute({
  method: 'get',
  path: '/v1/ws',
  tags: ['live'],
  summary: 'WebSocket live feed: send LiveRequest messages, receive LiveAnswer messages by `ref`.',
  description:
    'One JSON object per text frame each way: the request body describes a message the client ' +
    'sends, the 101 content a message the server answers with. Browsers may pass the API key ' +
    'as `?access_token=`. A malformed message gets a failed answer and the socket stays open.',
  security: [...API_KEY_SECURITY, { queryKey: [] }],
  request: {
    headers: z.object({ upgrade: z.literal('websocket') }),
    query: z.object({ access_token: z.string().optional() }),
    body: {
      description: 'Messages the client sends (one JSON object per text frame).',
      content: json(LiveRequestSchema),
    },
  },
  responses: {
    101: {
      description: 'Switched to WebSocket; answers are LiveAnswer messages.',
      content: json(LiveAnswerSchema),
    },
    ...errors('validation_error', ...COMMON_V1),
  },
});

/** The live feed mounted on an app: attach it to the node server, close its sockets. */
export interface LiveSocket {
  /** Lets the node server hand WebSocket upgrades to the app. */
  inject(server: ServerType): void;
  /** Closes every open socket with 1001 (going away). */
  closeAll(): void;
}

/**
 * Charges each message of a socket to its client's rate limit (RATE_LIMIT_RPS), the same Redis
 * budget as the client's HTTP requests; undefined when rate limits are off.
 */
function messageLimits(
  deps: ApiDeps,
): ((c: Context<AppEnv>) => () => Promise<RateDecision>) | undefined {
  const { config, redis, keys, logger } = deps;
  if (config.RATE_LIMIT_RPS <= 0) return undefined;
  const limiter = new RateLimiter(redis, keys, config.RATE_LIMIT_RPS, config.RATE_LIMIT_BURST);
  const ipOptions = { trustProxy: config.TRUST_PROXY, proxyHops: config.TRUST_PROXY_HOPS };
  return (c) => messageCharge(limiter, logger, rateLimitClientId(c, ipOptions));
}

/**
 * Mounts GET /v1/ws on `app` (after its middleware, so authentication covers the handshake):
 * each text message is one prediction request, answered by `ref` as it finishes.
 */
export function mountLiveSocket(app: Hono<AppEnv>, deps: ApiDeps): LiveSocket {
  const node = createNodeWebSocket({ app });
  // The same bound as an HTTP body; ws closes the socket with 1009 beyond it.
  node.wss.options.maxPayload = deps.config.MAX_BODY_BYTES;
  const chargeOf = messageLimits(deps);
  // Served by @hono/node-ws's upgrade, documented beside the other routes.
  if (app instanceof OpenAPIHono) app.openAPIRegistry.registerPath(LiveRoute);
  app.get(
    '/v1/ws',
    node.upgradeWebSocket((c) => {
      let session: LiveSession | undefined;
      return {
        onOpen: (_event, ws) => {
          session = new LiveSession(
            deps,
            (answer) => {
              if (ws.readyState === 1) ws.send(JSON.stringify(answer));
            },
            // @hono/node-ws types the handshake's context loosely; it is this app's.
            (c as Context<AppEnv>).get('requestId'),
            ownerOf(c as Context<AppEnv>),
            chargeOf?.(c as Context<AppEnv>),
          );
        },
        onMessage: (event: { data: unknown }) => session?.handle(event.data),
        onClose: () => session?.close(),
      };
    }),
    () => {
      throw new ApiError(
        'validation_error',
        'GET /v1/ws is a WebSocket endpoint: send the request with "Upgrade: websocket".',
      );
    },
  );
  return {
    inject: (server) => node.injectWebSocket(server),
    closeAll: () => {
      for (const socket of node.wss.clients) socket.close(1001, 'server shutting down');
    },
  };
}
