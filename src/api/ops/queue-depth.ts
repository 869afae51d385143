import type { JobCounter } from '../../shared/shards.js';
import { ApiError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

/**
 * Jobs waiting in the queue, refreshed in the background so that the backpressure check on the
 * request path costs no Redis round trip.
 */
export class QueueDepth {
  private waiting = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly queue: JobCounter,
    /** Depth above which new work is refused; 0 = unbounded. */
    private readonly maxDepth: number,
    private readonly logger: Logger,
    /** Refresh period, milliseconds. */
    private readonly refreshMs = 500,
  ) {}

  /** Starts refreshing. */
  start(): void {
    const tick = () => {
      void this.refresh().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.refreshMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  /** Stops refreshing. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Reads the depth now. */
  async refresh(): Promise<number> {
    try {
      const counts = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed');
      this.waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0);
    } catch (err) {
      this.logger.debug({ err }, 'queue depth refresh failed');
    }
    return this.waiting;
  }

  /** Last known depth. */
  get value(): number {
    return this.waiting;
  }

  /** Whether the queue is over its bound (new work is refused). */
  get full(): boolean {
    return this.maxDepth > 0 && this.waiting >= this.maxDepth;
  }

  /** Throws 429 queue_full when the queue is over its bound. */
  check(): void {
    if (this.full) {
      throw new ApiError(
        'queue_full',
        `The queue holds ${this.waiting} waiting jobs (limit ${this.maxDepth}); retry later.`,
        undefined,
        2,
      );
    }
  }
}
