import type { Socket } from 'node:net';
import type { HttpBindings, Http2Bindings, ServerType } from '@hono/node-server';

type Fetch = (req: Request, env: HttpBindings | Http2Bindings) => Response | Promise<Response>;

/**
 * The API's side of a graceful shutdown. A request that arrived before the signal is served to
 * the end (200 or 202); one that arrives after it is refused with 503 (`refuseWhileShuttingDown`);
 * every response written during shutdown carries `Connection: close`. The listener stays open for
 * a drain window, so a keep-alive client that sends on its idle socket gets that 503 instead of
 * a reset (Node's `server.close()` drops idle keep-alive sockets at once).
 */
export class ShutdownGate {
  // Requests that arrived after the signal: every other one was admitted. Marking the late ones
  // costs nothing until shutdown (a WeakSet entry per request is GC work on every cache hit).
  // Not an AsyncLocalStorage: that turns on promise hooks for every promise of the process.
  private readonly late = new WeakSet<Request>();
  private readonly sockets = new Set<Socket>();
  private closing = false;

  /**
   * True once shutdown began, except for `request` when it arrived before (the raw request of
   * the Hono context); without a request, true once shutdown began.
   */
  readonly isShuttingDown = (request?: Request): boolean =>
    this.closing && (request === undefined || this.late.has(request));

  /** Shutdown begins: requests that arrive from now on are refused. */
  begin(): void {
    this.closing = true;
  }

  /**
   * Wraps the app's fetch to mark requests that arrive once shutdown began (refused by
   * `refuseWhileShuttingDown`). Answers to the others close the connection once shutdown began:
   * `requestFrame` sets that header.
   */
  wrap(fetch: Fetch): Fetch {
    return (req, env) => {
      if (this.closing) this.late.add(req);
      return fetch(req, env);
    };
  }

  /** Counts the server's open connections; call right after creating it. */
  watch(server: ServerType): void {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Resolves after `ms`, or as soon as no connection is open. */
  async drain(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(25, Math.max(1, deadline - Date.now()))));
    }
  }
}
