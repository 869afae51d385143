import { sendTogether, type CommandSpec } from '../../shared/corked.js';
import type { RedisClient } from '../../shared/redis.js';
import { publishCommand } from '../../shared/replies.js';

interface PendingWrite {
  /** A cache entry to SET with the TTL, or a message to publish. */
  kind: 'set' | 'publish';
  key: string;
  value: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Where a job's cache entries and its reply go. */
export interface ResultWriter {
  /** Whether cache entries are written at all (CACHE_TTL_S > 0). */
  readonly caching: boolean;
  /** Stores `value` under `key` with the cache TTL. */
  write(key: string, value: string): Promise<void>;
  /** Publishes `message` on `channel`, after this job's cache entries. */
  send(channel: string, message: string): Promise<void>;
}

/**
 * A job's cache entries and reply held back, to be sent in the pipeline that ends the job
 * (fast lane, see shared/fast-lane.ts FINISH): one round trip for all of it.
 */
export class HeldWrites implements ResultWriter {
  readonly entries: { key: string; value: string }[] = [];
  reply: { channel: string; message: string } | undefined;

  /** `ttlS`: the cache entries' lifetime, seconds; 0 = the cache is off (none are held). */
  constructor(private readonly ttlS: number) {}

  get caching(): boolean {
    return this.ttlS > 0;
  }

  write(key: string, value: string): Promise<void> {
    if (this.caching) this.entries.push({ key, value });
    return Promise.resolve();
  }

  send(channel: string, message: string): Promise<void> {
    this.reply = { channel, message };
    return Promise.resolve();
  }

  /** The held entries' SETs, then the reply's PUBLISH (one server). */
  commands(): CommandSpec[] {
    const commands: CommandSpec[] = this.entries.map((e) => [
      'set',
      e.key,
      e.value,
      'EX',
      this.ttlS,
    ]);
    if (this.reply) commands.push(['publish', this.reply.channel, this.reply.message]);
    return commands;
  }
}

/**
 * Writes result-cache entries and reply messages, gathering those queued together (typically
 * one job's, or one inference batch's) into a single pipeline: one round trip for the whole batch,
 * with each cache entry written before the reply that tells a waiter about it.
 */
export class CacheWriter implements ResultWriter {
  private pending: PendingWrite[] = [];
  private scheduled = false;
  private readonly publish: 'spublish' | 'publish';

  constructor(
    private readonly redis: RedisClient,
    /** Entry lifetime, seconds; 0 = the cache is off (only replies are sent). */
    private readonly ttlS: number,
  ) {
    this.publish = publishCommand(redis);
  }

  /** Whether cache entries are written at all (CACHE_TTL_S > 0). */
  get caching(): boolean {
    return this.ttlS > 0;
  }

  /** Stores `value` under `key` with the cache TTL. */
  write(key: string, value: string): Promise<void> {
    return this.enqueue('set', key, value);
  }

  /** Publishes `message` on `channel` in the same round trip as this turn's cache writes. */
  send(channel: string, message: string): Promise<void> {
    return this.enqueue('publish', channel, message);
  }

  private enqueue(kind: PendingWrite['kind'], key: string, value: string): Promise<void> {
    if (kind === 'set' && this.ttlS <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pending.push({ kind, key, value, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // A microtask, not the next loop turn: the writes of one inference batch are queued by
        // then, and they leave before BullMQ's bookkeeping of the job (moveToFinished).
        queueMicrotask(() => this.flush());
      }
    });
  }

  private flush(): void {
    const writes = this.pending;
    this.pending = [];
    this.scheduled = false;
    if (this.publish === 'spublish') return this.sendEach(writes);
    const replies = sendTogether(
      this.redis,
      writes.map((w): CommandSpec =>
        w.kind === 'set' ? ['set', w.key, w.value, 'EX', this.ttlS] : ['publish', w.key, w.value],
      ),
    );
    writes.forEach((w, i) => {
      replies[i]?.then(() => w.resolve(), w.reject);
    });
  }

  // A Cluster pipeline must stay in one slot; separate commands still leave without waiting for
  // each other's replies, grouped per node by the client.
  private sendEach(writes: PendingWrite[]): void {
    for (const w of writes) {
      const sent =
        w.kind === 'set'
          ? this.redis.set(w.key, w.value, 'EX', this.ttlS)
          : this.redis.spublish(w.key, w.value);
      sent.then(() => w.resolve(), w.reject);
    }
  }
}
