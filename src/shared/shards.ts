import { createHash } from 'node:crypto';
import { fastLaneKeys } from './fast-lane.js';
import { Queue, type Job, type JobsOptions, type JobType, type QueueOptions } from 'bullmq';
import calculateSlot from 'cluster-key-slot';

/** Hash slots of a Redis Cluster. */
const SLOTS = 16384;

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * BullMQ prefixes of a queue's shards. One shard keeps QUEUE_PREFIX as it is. With more, each
 * shard gets a hash tag of its own, picked so that shard i hashes into the i-th equal share of
 * the slot space: a Cluster whose masters hold equal slot ranges (the default layout) then holds
 * equally many shards on each master, instead of whatever a random hash would give.
 */
export function shardPrefixes(prefix: string, count: number): string[] {
  if (count <= 1) return [prefix];
  const open = prefix.indexOf('{');
  const close = open < 0 ? -1 : prefix.indexOf('}', open + 1);
  if (close <= open + 1) return range(count).map((i) => `${prefix}-${i}`);
  const tag = prefix.slice(open + 1, close);
  return range(count).map((i) => {
    const low = Math.floor((i * SLOTS) / count);
    const high = Math.floor(((i + 1) * SLOTS) / count);
    for (let k = 0; ; k++) {
      const candidate = k === 0 ? `${tag}-${i}` : `${tag}-${i}.${k}`;
      const slot = calculateSlot(candidate);
      if (slot >= low && slot < high) {
        return `${prefix.slice(0, open + 1)}${candidate}${prefix.slice(close)}`;
      }
    }
  });
}

/** The shard of an input, from its SHA-256 (hex): identical inputs always meet on one shard. */
export function shardOfHash(hashHex: string, count: number): number {
  return count <= 1 ? 0 : Number.parseInt(hashHex.slice(0, 8), 16) % count;
}

/** The shard of any text (an id, a deduplication key). */
export function shardOfText(text: string, count: number): number {
  return count <= 1 ? 0 : createHash('sha256').update(text).digest().readUInt32BE(0) % count;
}

/** Anything that counts jobs by state: a queue or a sharded queue. */
export interface JobCounter {
  getJobCounts(...states: JobType[]): Promise<Record<string, number>>;
}

/** The shard of chunk `n` of a batch: a batch's chunks go round all shards from a start of its own. */
export function chunkShard(batchId: string, n: number, count: number): number {
  return count <= 1 ? 0 : (shardOfText(batchId, count) + n) % count;
}

/**
 * One logical BullMQ queue cut into shard queues, each with its own prefix. Calls about one job
 * go to the shard its id names (`shardOf`); counts add up over every shard.
 */
export class ShardedQueue<D = unknown, R = unknown> {
  /** The shard queues, in shard order. */
  readonly shards: Queue<D, R>[];

  constructor(
    readonly name: string,
    prefixes: readonly string[],
    options: Omit<QueueOptions, 'prefix'>,
    private readonly shardOf: (jobId: string) => number,
  ) {
    this.shards = prefixes.map((prefix) => new Queue<D, R>(name, { ...options, prefix }));
  }

  /** The shard queue holding `jobId`. */
  forJob(jobId: string): Queue<D, R> {
    const n = this.shards.length;
    const shard = n === 1 ? 0 : ((this.shardOf(jobId) % n) + n) % n;
    return this.shards[shard] as Queue<D, R>;
  }

  /** Adds a job to the shard its id names (shard 0 without an id: BullMQ numbers it there). */
  add(jobName: string, data: D, opts: JobsOptions = {}): Promise<Job<D, R>> {
    const queue = opts.jobId ? this.forJob(opts.jobId) : (this.shards[0] as Queue<D, R>);
    // BullMQ's name type parameter is a string subtype; the shard queues use plain strings.
    return queue.add(jobName as never, data as never, opts) as Promise<Job<D, R>>;
  }

  /** Adds many jobs, each to its own shard (one addBulk per shard); keeps the input order. */
  async addBulk(jobs: { name: string; data: D; opts?: JobsOptions }[]): Promise<Job<D, R>[]> {
    const byShard = new Map<Queue<D, R>, number[]>();
    jobs.forEach((job, i) => {
      const id = job.opts?.jobId;
      const queue = id ? this.forJob(id) : (this.shards[0] as Queue<D, R>);
      byShard.set(queue, [...(byShard.get(queue) ?? []), i]);
    });
    const out: Job<D, R>[] = new Array<Job<D, R>>(jobs.length);
    await Promise.all(
      [...byShard].map(async ([queue, indexes]) => {
        const added = await queue.addBulk(
          indexes.map((i) => jobs[i]) as Parameters<Queue<D, R>['addBulk']>[0],
        );
        added.forEach((job, k) => (out[indexes[k] as number] = job as Job<D, R>));
      }),
    );
    return out;
  }

  /** Reads a job from its shard. */
  getJob(jobId: string): Promise<Job<D, R> | undefined> {
    return this.forJob(jobId).getJob(jobId) as Promise<Job<D, R> | undefined>;
  }

  getJobState(jobId: string): ReturnType<Queue['getJobState']> {
    return this.forJob(jobId).getJobState(jobId);
  }

  /** Jobs waiting, delayed or prioritized, over every shard. */
  async count(): Promise<number> {
    const counts = await Promise.all(this.shards.map((q) => q.count()));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Removes a job from its shard; 0 when it is locked by a worker. */
  remove(jobId: string): Promise<number> {
    return this.forJob(jobId).remove(jobId);
  }

  /** The Redis key of a job (or of `jobId`'s hash) on its shard. */
  toKey(jobId: string): string {
    return this.forJob(jobId).toKey(jobId);
  }

  /**
   * Job counts by state, summed over every shard; `waiting` counts the jobs on the shards'
   * fast lanes too (online jobs no worker has taken yet, see fast-lane.ts).
   */
  async getJobCounts(...states: JobType[]): Promise<Record<string, number>> {
    const perShard = await Promise.all(
      this.shards.map(async (q) => {
        const counts = await q.getJobCounts(...states);
        if (states.includes('waiting')) {
          const lane = await (await q.backend.client).llen(fastLaneKeys(q.toKey('')).fast);
          counts.waiting = (counts.waiting ?? 0) + lane;
        }
        return counts;
      }),
    );
    const sum: Record<string, number> = {};
    for (const counts of perShard) {
      for (const [state, n] of Object.entries(counts)) sum[state] = (sum[state] ?? 0) + n;
    }
    return sum;
  }

  /** Workers consuming the queue: the most seen on any one shard (each worker takes several). */
  async getWorkersCount(): Promise<number> {
    const counts = await Promise.all(this.shards.map((q) => q.getWorkersCount()));
    return Math.max(0, ...counts);
  }

  on(event: 'error', listener: (err: Error) => void): void {
    for (const q of this.shards) q.on(event, listener);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((q) => q.close()));
  }
}
