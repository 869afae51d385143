import { parseChunkJobId } from '../../shared/batches.js';
import type { ResultHub } from '../jobs/results-hub.js';

/** Something that resolves when a batch may have changed, or after a timeout. */
export interface BatchWatch {
  /** Resolves at the next change (at once if one came since the last call), or after `ms`. */
  next(ms: number): Promise<void>;
  close(): void;
}

/**
 * Turns the queue's job-end events into per-batch change signals: every chunk job that ends
 * wakes the watches of its batch (status long-polls and SSE progress streams).
 */
export class BatchWatchers {
  private readonly watchers = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(hub: ResultHub) {
    hub.observe((jobId) => {
      const chunk = parseChunkJobId(jobId);
      if (chunk) for (const notify of this.watchers.get(chunk.batchId) ?? []) notify();
    });
  }

  /** True once `close` was called: watches resolve at once and loops should end. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Follows the chunk jobs of batch `id` until `close` is called on the watch. */
  watch(id: string): BatchWatch {
    let dirty = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      dirty = true;
      wake?.();
    };
    let set = this.watchers.get(id);
    if (!set) this.watchers.set(id, (set = new Set()));
    set.add(notify);
    return {
      next: (ms) =>
        new Promise<void>((resolve) => {
          if (dirty || this.closed) {
            dirty = false;
            return resolve();
          }
          const timer = setTimeout(() => done(), ms);
          const done = () => {
            clearTimeout(timer);
            wake = undefined;
            dirty = false;
            resolve();
          };
          wake = done;
        }),
      close: () => {
        wake?.();
        set.delete(notify);
        if (set.size === 0) this.watchers.delete(id);
      },
    };
  }

  /** Wakes every watch for good (shutdown): long-polls answer, streams end. */
  close(): void {
    this.closed = true;
    for (const set of this.watchers.values()) for (const notify of set) notify();
  }
}
