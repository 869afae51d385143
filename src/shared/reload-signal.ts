import type { Logger } from './logger.js';
import { createRedis, type RedisClient, type RedisTopology } from './redis.js';

/** Options of ReloadSignal. */
export interface ReloadSignalOptions {
  /** Where Redis is; a subscriber connection of its own is opened. */
  topology: RedisTopology;
  /** Pub/sub channel carrying reload requests (keys.modelsReloadChannel()). */
  channel: string;
  /** Rescan period, milliseconds; 0 = only when told through the channel or `trigger()`. */
  periodMs: number;
  logger: Logger;
  /** Rescans the model folder and applies the result. */
  reload: () => Promise<void>;
}

/**
 * Runs `reload` every `periodMs`, on every message of the reload channel, and on `trigger()`;
 * never two at once (a request during a reload runs once more after it).
 */
export class ReloadSignal {
  private subscriber: RedisClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  /** When the pass in progress started, ms since epoch. */
  private passStartedAt = 0;
  /** When the last finished pass started: the folder as it was then is known. */
  private scannedAt = 0;

  constructor(private readonly options: ReloadSignalOptions) {}

  /**
   * Subscribes to the channel and starts the periodic rescan. Does not wait for Redis: the
   * returned promise settles once subscribed, for callers (tests) that want to know.
   */
  start(): Promise<void> {
    const { topology, channel, periodMs, logger } = this.options;
    const subscriber = createRedis({ ...topology, role: 'blocking', name: 'inferq-models' });
    this.subscriber = subscriber;
    subscriber.on('error', (err: Error) =>
      logger.debug({ err: err.message }, 'reload channel error'),
    );
    subscriber.on('message', (ch: string) => {
      if (ch === channel) void this.trigger();
    });
    if (periodMs > 0) this.schedule(periodMs);
    return subscriber.subscribe(channel).then(
      () => undefined,
      (err: unknown) => logger.warn({ err }, 'could not subscribe to the model reload channel'),
    );
  }

  private schedule(periodMs: number): void {
    this.timer = setTimeout(() => {
      void this.trigger().finally(() => {
        if (!this.closed) this.schedule(periodMs);
      });
    }, periodMs);
    this.timer.unref();
  }

  /** Reloads now (or right after the reload in progress); resolves when that reload is done. */
  trigger(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        this.passStartedAt = Date.now();
        try {
          await this.options.reload();
        } catch (err) {
          this.options.logger.error({ err }, 'model reload failed');
        }
        this.scannedAt = this.passStartedAt;
      } while (this.again && !this.closed);
      this.running = undefined;
    })();
    return this.running;
  }

  /**
   * Resolves once the folder has been scanned as it was at `sinceMs` (ms since epoch) or later:
   * at once when a finished scan started after it, else after the scan in progress (when it
   * started after it) or a new one. Lets a worker look for a version that a job created at
   * `sinceMs` names; concurrent askers share one scan.
   */
  fresh(sinceMs: number): Promise<void> {
    if (this.scannedAt >= sinceMs) return Promise.resolve();
    if (this.running && this.passStartedAt >= sinceMs) return this.running;
    return this.trigger();
  }

  /** Stops rescanning and closes the subscriber connection. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    // A subscriber has nothing to flush: drop it at once, even while Redis is unreachable.
    this.subscriber?.disconnect();
  }
}

/** Tells every API and worker process subscribed to `channel` to rescan; resolves with how many heard it. */
export async function publishReload(redis: RedisClient, channel: string): Promise<number> {
  return redis.publish(channel, String(Date.now()));
}
