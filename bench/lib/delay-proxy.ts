import { connect, createServer, type Server, type Socket } from 'node:net';

/** How long chunks actually waited in the proxy (timers fire late by up to about a millisecond). */
export interface DelayStats {
  chunks: number;
  meanDelayMs: number;
}

/**
 * A TCP proxy that holds every chunk, each way, `delayMs` before passing it on: a network hop
 * of known latency between a client and Redis. Order is kept per direction, also when the delay
 * changes mid-stream.
 */
export class DelayProxy {
  /** Delay applied to chunks that arrive from now on, milliseconds. */
  delayMs = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private chunks = 0;
  private delayedMs = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {
    this.server = createServer((client) => this.pair(client));
  }

  /** Listens on a free loopback port and returns it. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        const address = this.server.address();
        resolve(typeof address === 'object' && address ? address.port : 0);
      });
    });
  }

  /** Mean delay chunks waited since the last reset. */
  stats(): DelayStats {
    return {
      chunks: this.chunks,
      meanDelayMs: this.chunks ? this.delayedMs / this.chunks : 0,
    };
  }

  /** Starts counting afresh. */
  resetStats(): void {
    this.chunks = 0;
    this.delayedMs = 0;
  }

  /** Stops listening and drops every proxied connection. */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private pair(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    this.forward(client, upstream);
    this.forward(upstream, client);
  }

  private forward(from: Socket, to: Socket): void {
    const queue: Array<{ at: number; due: number; data: Buffer }> = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      const now = performance.now();
      while (queue[0] && queue[0].due <= now) {
        const item = queue.shift()!;
        this.chunks++;
        this.delayedMs += now - item.at;
        to.write(item.data);
      }
      if (queue[0]) timer = setTimeout(flush, Math.max(1, Math.ceil(queue[0].due - now)));
    };
    from.on('data', (data: Buffer) => {
      const at = performance.now();
      if (this.delayMs <= 0 && queue.length === 0) {
        this.chunks++;
        to.write(data);
        return;
      }
      // Never earlier than the chunk before it: a shorter delay must not reorder the stream.
      const due = Math.max(at + this.delayMs, queue.at(-1)?.due ?? 0);
      queue.push({ at, due, data });
      timer ??= setTimeout(flush, Math.max(1, Math.ceil(due - at)));
    });
    from.on('end', () => {
      const finish = () => (queue.length ? setTimeout(finish, 5) : to.end());
      finish();
    });
  }
}
