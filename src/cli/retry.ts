import type { InferqError } from '../client/index.js';

/** Attempts at one transfer (an upload, a results stream) before a command gives up. */
export const MAX_ATTEMPTS = 5;

/** Milliseconds to wait before attempt `n + 1`: 0.5 s, 1 s, 2 s, 4 s. */
export function backoffMs(n: number): number {
  return 500 * 2 ** Math.max(0, n - 1);
}

/**
 * Whether a request failed on the way rather than by the server's choice: the connection was
 * refused, reset or cut, or the server was shutting down (503). Worth sending again.
 */
export function isDropped(err: InferqError): boolean {
  return (err.status === 0 && err.code === 'unavailable') || err.status === 503;
}
