import type { RedisClient } from '../shared/redis.js';

interface PendingWrite {
  key: string;
  value: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Writes result-cache entries, gathering the writes of one event-loop turn (typically one
 * inference batch) into a single pipeline: one round trip for the whole batch.
 */
export class CacheWriter {
  private pending: PendingWrite[] = [];
  private scheduled = false;

  constructor(
    private readonly redis: RedisClient,
    /** Entry lifetime, seconds. */
    private readonly ttlS: number,
  ) {}

  /** Stores `value` under `key` with the cache TTL. */
  write(key: string, value: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ key, value, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const writes = this.pending;
    this.pending = [];
    this.scheduled = false;
    const pipeline = this.redis.pipeline();
    for (const w of writes) pipeline.set(w.key, w.value, 'EX', this.ttlS);
    pipeline.exec().then(
      (results) => {
        writes.forEach((w, i) => {
          const err = results?.[i]?.[0];
          if (err) w.reject(err);
          else w.resolve();
        });
      },
      (err: unknown) => writes.forEach((w) => w.reject(err)),
    );
  }
}
