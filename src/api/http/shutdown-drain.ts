import type { Context } from 'hono';
import { ApiError } from '../../shared/errors.js';
import type { AppEnv } from '../deps.js';

// Probes answer for themselves while shutting down: live stays 200, ready says 503.
const HEALTH_PATH = /^\/(v2\/)?health\//;

/**
 * Refuses a request that arrived after shutdown began with 503 `unavailable` and
 * `Retry-After: 1`; the server closes its connection after the answer (ShutdownGate).
 */
export function refuseWhileShuttingDown(
  c: Context<AppEnv>,
  isShuttingDown: (request: Request) => boolean,
): void {
  if (isShuttingDown(c.req.raw) && !HEALTH_PATH.test(c.req.path)) {
    throw new ApiError(
      'unavailable',
      'The server is shutting down; retry on a new connection.',
      undefined,
      1,
    );
  }
}
