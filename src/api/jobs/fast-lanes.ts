import type { Config } from '../../shared/config.js';
import type { JobsOptions } from 'bullmq';
import { ENQUEUE, fastLaneKeys } from '../../shared/fast-lane.js';
import { PREDICT_JOB, type PredictJobData } from '../../shared/jobs.js';
import type { RedisClient } from '../../shared/redis.js';

/**
 * Which shards' fast lanes some worker consumes (shared/fast-lane.ts), read now and every
 * second in the background. Workers of an older release, or run with the lane off, register no
 * consumer: jobs then go through BullMQ's own queue.
 */
export class FastLanes {
  private readonly consumed = new Set<number>();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: Pick<Config, 'ONLINE_FAST_LANE'>,
    private readonly shards: readonly { toKey(id: string): string }[],
    private readonly redis: RedisClient,
  ) {
    if (!config.ONLINE_FAST_LANE) return;
    // Not from the constructor's own turn: an auto-pipeline opened before another part of the
    // API defines its scripts (defineCommand) would not know them, and ioredis would fail the
    // commands that join it.
    setTimeout(() => void this.read(), 0).unref();
    this.timer = setInterval(() => void this.read(), 1000);
    this.timer.unref();
  }

  /** Whether jobs of `shard` go on its fast lane: ONLINE_FAST_LANE, and a worker consumes it. */
  open(shard: number): boolean {
    return this.config.ONLINE_FAST_LANE && this.consumed.has(shard);
  }

  /**
   * Queues job `jobId` on the fast lane of the shard whose BullMQ key is `queueKey`
   * (`<prefix>:<queue>:`), its hash stored as BullMQ's add stores it, in one script.
   */
  async enqueue(
    queueKey: string,
    jobId: string,
    data: PredictJobData,
    opts: JobsOptions,
  ): Promise<void> {
    const lane = fastLaneKeys(queueKey);
    await ENQUEUE.run(
      this.redis,
      [`${queueKey}${jobId}`, lane.fast, lane.meta, lane.wait],
      [jobId, PREDICT_JOB, JSON.stringify(data), JSON.stringify(opts), Date.now()],
    );
  }

  /** Stops reading. */
  close(): void {
    clearInterval(this.timer);
  }

  private async read(): Promise<void> {
    // Not while the connection is away: an auto-pipelined command sent then breaks the batch
    // it joins (ioredis fails the whole pipeline, and other callers' commands with it).
    if (this.redis.status !== 'ready') return;
    const counts = await Promise.all(
      this.shards.map((q) => this.redis.scard(fastLaneKeys(q.toKey('')).consumers).catch(() => -1)),
    );
    counts.forEach((n, shard) => {
      if (n > 0) this.consumed.add(shard);
      else if (n === 0) this.consumed.delete(shard);
    });
  }
}
