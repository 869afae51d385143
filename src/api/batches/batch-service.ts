import { randomUUID } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import type { ShardedQueue } from '../../shared/shards.js';
import type { RedisClient } from '../../shared/redis.js';
import { CANCEL_BATCH, SEAL_BATCH } from '../../shared/batch-scripts.js';
import {
  BATCH_CHUNK_JOB,
  BATCH_DEFAULT_PRIORITY,
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
import { ChunkStager, type ChunkSink } from './batch-upload.js';
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

// While rows arrive the record lives on a lease the upload renews: if the API dies mid-upload the
// record lapses and every chunk of it queued so far becomes a no-op (START_CHUNK finds no record).
const UPLOAD_LEASE_S = 30;
const LEASE_RENEW_MS = 10_000;
// Keys deleted per DEL when an upload is rejected.
const DELETE_GROUP = 500;

/** A batch whose upload is being read: what its chunk jobs are made from. */
interface OpenBatch {
  id: string;
  model: ModelVersion;
  owner: Owner;
  priority: number;
}

/** Batches: staging, enqueueing chunk jobs, progress, cancellation. */
export class BatchService {
  private readonly watchers: BatchWatchers;
  private readonly open = new WeakMap<ChunkStager, OpenBatch>();

  constructor(
    private readonly config: Config,
    /** The batch-chunk queue (Bull Board shows it too). */
    readonly queue: ShardedQueue,
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly hub: ResultHub,
  ) {
    this.watchers = new BatchWatchers(hub);
  }

  /**
   * A stager for a new batch of `owner`: each chunk is staged and queued as soon as it is full,
   * under a record the owner cannot see until `create` seals it.
   */
  stager(model: ModelVersion, owner: Owner, priority = BATCH_DEFAULT_PRIORITY): ChunkStager {
    const batch: OpenBatch = { id: randomUUID(), model, owner, priority };
    const stager = new ChunkStager({
      batchId: batch.id,
      rowSize: model.rowSize,
      chunkRows: this.config.BATCH_CHUNK_ROWS,
      sink: new BatchUpload(this, batch),
    });
    this.open.set(stager, batch);
    return stager;
  }

  /** Seals `owner`'s fully read upload: from now on it is visible, with its total. */
  async create(
    owner: Owner,
    model: ModelVersion,
    stager: ChunkStager,
    priority: number,
  ): Promise<void> {
    const batch = this.open.get(stager);
    if (batch?.owner !== owner || batch.model !== model || batch.priority !== priority) {
      throw new Error('the stager was made for another batch');
    }
    await stager.seal();
  }

  /** Writes the record of a batch whose upload has begun (status 'uploading', on a lease). */
  async begin(batch: OpenBatch): Promise<void> {
    const key = this.keys.batch(batch.id);
    await this.redis
      .multi()
      .hset(key, {
        model: batch.model.name,
        version: batch.model.version,
        chunkRows: this.config.BATCH_CHUNK_ROWS,
        createdAt: Date.now(),
        status: 'uploading',
        completed: 0,
        failed: 0,
        cancelled: 0,
        owner: batch.owner,
      })
      .expire(key, UPLOAD_LEASE_S)
      .exec();
  }

  /** Keeps an uploading batch's record alive. */
  async renewLease(id: string): Promise<void> {
    await this.redis.expire(this.keys.batch(id), UPLOAD_LEASE_S);
  }

  /** Stores the staged rows of one chunk. */
  async stageChunk(id: string, chunk: number, staged: Buffer): Promise<void> {
    await this.redis.set(this.keys.batchInput(id, chunk), staged, 'EX', this.config.RESULT_TTL_S);
  }

  /**
   * Queues one job per chunk. The only place chunk jobs are made: a sharded queue changes here.
   */
  async enqueueChunks(batch: OpenBatch, chunks: { chunk: number; rows: number }[]): Promise<void> {
    const { id, model, owner, priority } = batch;
    const opts: JobsOptions = {
      priority,
      attempts: this.config.JOB_ATTEMPTS,
      backoff: { type: 'exponential', delay: this.config.JOB_BACKOFF_MS },
      // The chunk's results live in their own key; the finished job is of no further use.
      removeOnComplete: true,
      removeOnFail: { age: this.config.RESULT_TTL_S, count: this.config.RESULT_MAX_JOBS },
    };
    const jobs = chunks.map(({ chunk, rows }) => {
      const data: BatchChunkJobData = {
        batchId: id,
        chunk,
        firstIndex: chunk * this.config.BATCH_CHUNK_ROWS,
        rows,
        model: model.name,
        version: model.version,
        cacheScope: cacheScope(this.config, owner),
      };
      return { name: BATCH_CHUNK_JOB, data, opts: { ...opts, jobId: chunkJobId(id, chunk) } };
    });
    await this.queue.addBulk(jobs);
  }

  /** Makes a fully read upload visible; throws 503 when its record lapsed meanwhile. */
  async seal(id: string, total: number, chunks: number): Promise<void> {
    const args = [total, chunks, Date.now(), this.config.RESULT_TTL_S];
    const status = await SEAL_BATCH.run(this.redis, [this.keys.batch(id)], args);
    if (status === 'missing') {
      throw new ApiError('unavailable', 'The upload took too long to be recorded; send it again.');
    }
  }

  /**
   * Drops a rejected upload: its record first (from then on no worker stores a result of it and
   * chunks not started do nothing), then every result and staged rows, then the queued jobs.
   */
  async reject(id: string, chunks: number): Promise<void> {
    await this.redis.del(this.keys.batch(id));
    for (let start = 0; start < chunks; start += DELETE_GROUP) {
      const names: string[] = [];
      for (let n = start; n < Math.min(chunks, start + DELETE_GROUP); n++) {
        names.push(this.keys.batchOutput(id, n), this.keys.batchInput(id, n));
      }
      await this.redis.del(...names);
    }
    // A chunk a worker holds cannot be removed; it ends without storing anything.
    const jobs = Array.from({ length: chunks }, (_, n) => chunkJobId(id, n));
    for (let start = 0; start < jobs.length; start += 100) {
      const group = jobs.slice(start, start + 100);
      await Promise.all(group.map((job) => this.queue.remove(job).catch(() => 0)));
    }
  }

  /** The stored record of `owner`'s batch; throws 404 batch_not_found for any other. */
  async record(owner: Owner, id: string): Promise<BatchRecord> {
    const values = await this.redis.hmget(this.keys.batch(id), ...FIELDS);
    const f = Object.fromEntries(FIELDS.map((name, i) => [name, values[i]])) as Record<
      (typeof FIELDS)[number],
      string | null
    >;
    // An upload still being read has no total yet: its id is known to nobody but the API.
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
      const ids = Buffer.isBuffer(buf) ? decodeChunk(buf).idTexts : [];
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

/** The sink of one upload: record on first chunk, lease while reading, then seal or reject. */
class BatchUpload implements ChunkSink {
  private begun: Promise<void> | undefined;
  private lease: NodeJS.Timeout | undefined;

  constructor(
    private readonly service: BatchService,
    private readonly batch: OpenBatch,
  ) {}

  async stage(chunk: number, staged: Buffer, rows: number): Promise<void> {
    // The record exists (with its owner) before any chunk of it can be taken by a worker.
    this.begun ??= this.start();
    await this.begun;
    await this.service.stageChunk(this.batch.id, chunk, staged);
    await this.service.enqueueChunks(this.batch, [{ chunk, rows }]);
  }

  async seal(total: number, chunks: number): Promise<void> {
    if (chunks > 0) await this.begun;
    this.stopLease();
    await this.service.seal(this.batch.id, total, chunks);
  }

  async reject(chunks: number): Promise<void> {
    this.stopLease();
    if (this.begun) await this.begun.catch(() => undefined);
    await this.service.reject(this.batch.id, chunks);
  }

  private async start(): Promise<void> {
    await this.service.begin(this.batch);
    this.lease = setInterval(() => {
      this.service.renewLease(this.batch.id).catch(() => undefined);
    }, LEASE_RENEW_MS);
    this.lease.unref();
  }

  private stopLease(): void {
    clearInterval(this.lease);
    this.lease = undefined;
  }
}
