import { randomUUID } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import type { RedisClient } from '../../shared/redis.js';
import { CANCEL_BATCH } from '../../shared/batch-scripts.js';
import {
  BATCH_CHUNK_JOB,
  cancelledLines,
  chunkJobId,
  decodeChunk,
  rowsOfChunk,
  type BatchChunkJobData,
  type BatchRecord,
  type BatchView,
} from '../../shared/batches.js';
import type { Config } from '../../shared/config.js';
import { ApiError } from '../../shared/errors.js';
import type { Keys } from '../../shared/keys.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import { readResults } from './batch-results.js';
import { BatchWatchers, type BatchWatch } from './batch-watch.js';
import { ChunkStager } from './batch-upload.js';
import { cacheScope } from '../http/owner.js';
import type { Owner } from '../jobs/public-ids.js';
import type { ResultHub } from '../jobs/results-hub.js';

const FIELDS = [
  'model',
  'version',
  'total',
  'chunks',
  'chunkRows',
  'createdAt',
  'status',
  'startedAt',
  'finishedAt',
  'completed',
  'failed',
  'cancelled',
  'owner',
] as const;

// Chunk jobs added per addBulk call: one MULTI each, so Redis is never blocked for long.
const ENQUEUE_GROUP = 500;

/** Batches: staging, enqueueing chunk jobs, progress, cancellation. */
export class BatchService {
  private readonly watchers: BatchWatchers;

  constructor(
    private readonly config: Config,
    /** The batch-chunk queue (Bull Board shows it too). */
    readonly queue: Queue,
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly hub: ResultHub,
  ) {
    this.watchers = new BatchWatchers(hub);
  }

  /** A stager for a new batch of `model`. */
  stager(model: ModelVersion): ChunkStager {
    return new ChunkStager({
      redis: this.redis,
      keys: this.keys,
      batchId: randomUUID(),
      rowSize: model.rowSize,
      chunkRows: this.config.BATCH_CHUNK_ROWS,
      ttlS: this.config.RESULT_TTL_S,
    });
  }

  /** Records a fully staged batch of `owner` and enqueues one job per chunk, in bulk. */
  async create(
    owner: Owner,
    model: ModelVersion,
    stager: ChunkStager,
    priority: number,
  ): Promise<void> {
    const { batchId: id } = stager.options;
    const key = this.keys.batch(id);
    await this.redis
      .multi()
      .hset(key, {
        model: model.name,
        version: model.version,
        total: stager.total,
        chunks: stager.chunks,
        chunkRows: stager.options.chunkRows,
        createdAt: Date.now(),
        status: 'queued',
        completed: 0,
        failed: 0,
        cancelled: 0,
        owner,
      })
      .expire(key, this.config.RESULT_TTL_S)
      .exec();
    const opts: JobsOptions = {
      priority,
      attempts: this.config.JOB_ATTEMPTS,
      backoff: { type: 'exponential', delay: this.config.JOB_BACKOFF_MS },
      // The chunk's results live in their own key; the finished job is of no further use.
      removeOnComplete: true,
      removeOnFail: { age: this.config.RESULT_TTL_S, count: this.config.RESULT_MAX_JOBS },
    };
    for (let start = 0; start < stager.chunks; start += ENQUEUE_GROUP) {
      const end = Math.min(stager.chunks, start + ENQUEUE_GROUP);
      const jobs = [];
      for (let chunk = start; chunk < end; chunk++) {
        const data: BatchChunkJobData = {
          batchId: id,
          chunk,
          firstIndex: chunk * stager.options.chunkRows,
          model: model.name,
          version: model.version,
          cacheScope: cacheScope(this.config, owner),
        };
        jobs.push({ name: BATCH_CHUNK_JOB, data, opts: { ...opts, jobId: chunkJobId(id, chunk) } });
      }
      await this.queue.addBulk(jobs);
    }
  }

  /** The stored record of `owner`'s batch; throws 404 batch_not_found for any other. */
  async record(owner: Owner, id: string): Promise<BatchRecord> {
    const values = await this.redis.hmget(this.keys.batch(id), ...FIELDS);
    const f = Object.fromEntries(FIELDS.map((name, i) => [name, values[i]])) as Record<
      (typeof FIELDS)[number],
      string | null
    >;
    if (f.model === null || f.version === null || f.total === null || f.owner !== owner) {
      throw new ApiError('batch_not_found', `Batch "${id}" does not exist or has expired.`);
    }
    const total = Number(f.total);
    const completed = Number(f.completed ?? 0);
    const failed = Number(f.failed ?? 0);
    const cancelled = Number(f.cancelled ?? 0);
    const stored = f.status ?? 'queued';
    const status =
      stored === 'completed' || stored === 'cancelled'
        ? stored
        : f.startedAt !== null
          ? 'running'
          : 'queued';
    return {
      id,
      status,
      model: f.model,
      version: f.version,
      total,
      completed,
      failed,
      pending: Math.max(0, total - completed - failed),
      ...(cancelled > 0 ? { cancelled } : {}),
      createdAt: new Date(Number(f.createdAt)).toISOString(),
      ...(f.finishedAt !== null
        ? { finishedAt: new Date(Number(f.finishedAt)).toISOString() }
        : {}),
      chunks: Number(f.chunks ?? 0),
      chunkRows: Number(f.chunkRows ?? 1),
    };
  }

  /** The public view of `owner`'s batch; throws 404 batch_not_found. */
  async view(owner: Owner, id: string): Promise<BatchView> {
    const view: Partial<BatchRecord> = await this.record(owner, id);
    delete view.chunks;
    delete view.chunkRows;
    return view as BatchView;
  }

  /** The view once the batch has ended, or after `waitMs` with its current progress. */
  async waitForEnd(owner: Owner, id: string, waitMs: number): Promise<BatchView> {
    const deadline = Date.now() + waitMs;
    const watch = this.watch(id);
    try {
      for (;;) {
        const view = await this.view(owner, id);
        const left = deadline - Date.now();
        if (view.finishedAt !== undefined || left <= 0 || this.isClosed) return view;
        // Events are best-effort: look again at least every 2 s even without one.
        await watch.next(Math.min(left, 2000));
      }
    } finally {
      watch.close();
    }
  }

  /** Follows the progress of batch `id`; close the watch when done. */
  watch(id: string): BatchWatch {
    return this.watchers.watch(id);
  }

  /** True once shutdown began: streams and long-polls end. */
  get isClosed(): boolean {
    return this.watchers.isClosed;
  }

  /** Ends every long-poll and stream of batches (call before the hub is released). */
  close(): void {
    this.watchers.close();
  }

  /** The NDJSON text of every chunk in order, waiting for chunks that have not finished. */
  results(batch: BatchRecord, aborted: () => boolean): AsyncGenerator<Buffer> {
    const deps = { redis: this.redis, keys: this.keys, hub: this.hub };
    return readResults(deps, batch, () => aborted() || this.isClosed);
  }

  /** Cancels every chunk that has not started; 409 when the batch has completed. */
  async cancel(owner: Owner, id: string): Promise<void> {
    await this.record(owner, id);
    const reply = (await CANCEL_BATCH.run(this.redis, [this.keys.batch(id)], [Date.now()])) as [
      string,
      number[]?,
    ];
    if (reply[0] === 'missing') {
      throw new ApiError('batch_not_found', `Batch "${id}" does not exist or has expired.`);
    }
    if (reply[0] === 'completed') {
      throw new ApiError(
        'job_not_cancellable',
        `Batch "${id}" has completed and cannot be cancelled.`,
      );
    }
    const cancelled = reply[1] ?? [];
    if (cancelled.length === 0) return;
    const { total, chunkRows } = await this.record(owner, id);
    for (let start = 0; start < cancelled.length; start += 100) {
      await this.writeCancelled(id, cancelled.slice(start, start + 100), total, chunkRows);
    }
  }

  /** Writes the cancelled result lines of `chunks`, then drops their staged rows and jobs. */
  private async writeCancelled(
    id: string,
    chunks: number[],
    total: number,
    chunkRows: number,
  ): Promise<void> {
    const read = this.redis.pipeline();
    for (const n of chunks) read.getBuffer(this.keys.batchInput(id, n));
    const staged = (await read.exec()) ?? [];
    const write = this.redis.pipeline();
    chunks.forEach((n, i) => {
      const buf = staged[i]?.[1];
      const ids = Buffer.isBuffer(buf) ? decodeChunk(buf).ids : [];
      write.set(
        this.keys.batchOutput(id, n),
        cancelledLines(n * chunkRows, rowsOfChunk(total, chunkRows, n), ids),
        'EX',
        this.config.RESULT_TTL_S,
      );
      write.del(this.keys.batchInput(id, n));
    });
    await write.exec();
    // Results are written first: a reader woken by the 'removed' event finds them.
    await Promise.all(chunks.map((n) => this.queue.remove(chunkJobId(id, n)).catch(() => 0)));
  }
}
