import type { Job } from 'bullmq';
import { FINISH_CHUNK, START_CHUNK } from '../../shared/batch-scripts.js';
import {
  decodeChunk,
  rowsOfChunk,
  type BatchChunkJobData,
  type BatchChunkResult,
  type DecodedChunk,
} from '../../shared/batches.js';
import type { Config } from '../../shared/config.js';
import type { ErrorCode } from '../../shared/errors.js';
import { keysOf } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../../shared/redis.js';
import { Utf8Lines } from '../../shared/utf8-lines.js';
import { CacheSampling } from './cache-sampling.js';
import {
  inferRows,
  lookupCache,
  nextTurn,
  resultLine,
  rowOf,
  ROWS_PER_STEP,
  type RowOutcome,
} from './chunk-rows.js';
import type { ModelPool } from '../inference/model-pool.js';

/** What the batch-chunk processor needs. */
export interface BatchProcessorDeps {
  pool: ModelPool;
  redis: RedisClient;
  config: Config;
  logger: Logger;
}

/** Bytes of a typical result line (a classifier's, with an id): the first guess of the buffer. */
const RESULT_LINE_BYTES = 160;

/** Most bytes of float32 input in one inference run of a chunk. */
const RUN_INPUT_BYTES = 16 * 1024 * 1024;

/**
 * Rows of one inference run of a chunk whose rows hold `rowSize` values: BATCH_RUN_ROWS, fewer
 * when the rows are so wide (an image flattened) that the run's input would pass 16 MB.
 */
export function chunkRunRows(batchRunRows: number, rowSize: number): number {
  const fit = Math.floor(RUN_INPUT_BYTES / (4 * Math.max(rowSize, 1)));
  return Math.max(1, Math.min(batchRunRows, fit));
}

function attemptsLeft(job: Job): number {
  return (job.opts.attempts ?? 1) - job.attemptsMade - 1;
}

/** The given rows of a row-major block, in one block of their own. */
function gatherRows(values: Float32Array, rowSize: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((row, j) => out.set(rowOf(values, rowSize, row), j * rowSize));
  return out;
}

function failAll(rows: number, code: ErrorCode, message: string): RowOutcome[] {
  return Array.from({ length: rows }, () => ({ error: { code, message } }));
}

/** Builds the processor of 'batch-chunk' jobs: staged rows -> cache / inference -> one result key. */
export function createBatchProcessor(deps: BatchProcessorDeps) {
  const { pool, redis, config, logger } = deps;
  const keys = keysOf(config);
  const sampling = new CacheSampling();

  async function outcomesOf(data: BatchChunkJobData, staged: DecodedChunk): Promise<RowOutcome[]> {
    const loaded = pool.get(data.model, data.version);
    if (!loaded) {
      const message = `model ${data.model} version ${data.version} is not loaded by this worker`;
      return failAll(staged.rows, 'version_not_found', message);
    }
    // Float32Array.set would zero-pad short rows silently: the width is checked here too.
    if (staged.rowSize !== loaded.model.rowSize) {
      const message = `expected ${loaded.model.rowSize} features, got ${staged.rowSize}`;
      return failAll(staged.rows, 'validation_error', message);
    }
    const { rows, values, rowSize } = staged;
    const outcomes = new Array<RowOutcome | undefined>(rows).fill(undefined);
    if (config.CACHE_TTL_S > 0) {
      const look = (from: number, to: number) =>
        lookupCache(
          redis,
          keys,
          data.cacheScope ?? 'anon',
          loaded.model,
          values,
          { from, to },
          outcomes,
        );
      const first = sampling.firstLookup(data.batchId, rows);
      let hits = await look(0, first);
      // A sample that hit: the rest of the chunk is looked up too.
      const rest = first < rows && hits > 0;
      if (rest) hits += await look(first, rows);
      sampling.record(data.batchId, rest ? rows : first, hits);
    }
    const misses: number[] = [];
    for (let i = 0; i < rows; i++) if (!outcomes[i]) misses.push(i);
    if (misses.length > 0) {
      // Usually every row missed: then the rows go as they are, else the misses are gathered.
      const missValues = misses.length === rows ? values : gatherRows(values, rowSize, misses);
      // Runs of BATCH_RUN_ROWS (a whole chunk by default), not of the online micro-batch size:
      // 64-row runs of a 1M-row batch cost its worker a quarter more CPU (issue 14).
      const runRows = chunkRunRows(config.BATCH_RUN_ROWS, rowSize);
      const inferred = await inferRows(loaded, runRows, missValues, misses.length);
      misses.forEach((row, j) => (outcomes[row] = inferred[j]));
    }
    return outcomes.map((o) => o ?? { error: { code: 'inference_failed', message: 'no result' } });
  }

  async function rowCount(data: BatchChunkJobData): Promise<number> {
    if (data.rows !== undefined) return data.rows;
    const [total, chunkRows] = await redis.hmget(keys.batch(data.batchId), 'total', 'chunkRows');
    return rowsOfChunk(Number(total), Number(chunkRows), data.chunk);
  }

  /** The chunk's outcomes and item ids as JSON text; throws to retry when every row failed to infer. */
  async function compute(
    job: Job<BatchChunkJobData>,
  ): Promise<{ outcomes: RowOutcome[]; idTexts: string[] }> {
    const buf = await redis.getBuffer(keys.batchInput(job.data.batchId, job.data.chunk));
    if (!buf) {
      const message = 'The staged rows of this chunk have expired.';
      return {
        outcomes: failAll(await rowCount(job.data), 'inference_failed', message),
        idTexts: [],
      };
    }
    const staged = decodeChunk(buf);
    const outcomes = await outcomesOf(job.data, staged);
    const allFailed = outcomes.every((o) => 'error' in o && o.error.code === 'inference_failed');
    // A session that fails every row is likely transient (a crashed thread): retry the chunk.
    if (allFailed && attemptsLeft(job) > 0) {
      throw new Error('inference_failed: every row of the chunk failed');
    }
    return { outcomes, idTexts: staged.idTexts };
  }

  async function finish(job: Job<BatchChunkJobData>, outcomes: RowOutcome[], idTexts: string[]) {
    const { batchId, chunk, firstIndex } = job.data;
    // Sent as bytes encoded a few lines at a time (see Utf8Lines: one joined string of thousands
    // of lines cost 6x more to encode than the lines themselves; the profile of issue 14).
    const lines = new Utf8Lines(outcomes.length * RESULT_LINE_BYTES);
    let completed = 0;
    for (const [i, o] of outcomes.entries()) {
      if (i > 0 && i % ROWS_PER_STEP === 0) await nextTurn();
      lines.push(resultLine(firstIndex + i, idTexts[i], o));
      if (!('error' in o)) completed++;
    }
    const text = lines.bytes();
    const state = await FINISH_CHUNK.run(
      redis,
      [keys.batch(batchId), keys.batchOutput(batchId, chunk), keys.batchInput(batchId, chunk)],
      [chunk, completed, outcomes.length - completed, Date.now(), text, config.RESULT_TTL_S],
    );
    if (state === 2) logger.info({ batchId }, 'batch finished');
    return state === 2;
  }

  return async (job: Job<BatchChunkJobData>): Promise<BatchChunkResult> => {
    const { batchId, chunk } = job.data;
    const queueMs = Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp);
    const result: BatchChunkResult = { batchId, chunk, rows: 0, finished: false, queueMs };
    // How many chunks run at once is the batch Worker's concurrency (BATCH_WORKER_CONCURRENCY).
    const claim = await START_CHUNK.run(
      redis,
      [keys.batch(batchId), keys.batchInput(batchId, chunk)],
      [chunk, Date.now()],
    );
    // Cancelled, already counted by an earlier run, expired or rejected: nothing to do.
    if (claim !== 'run') return result;
    const { outcomes, idTexts } = await compute(job).catch(async (err: unknown) => {
      if (attemptsLeft(job) > 0) throw err;
      // Out of attempts: the rows fail, so that the batch still ends.
      logger.error({ err, batchId, chunk }, 'batch chunk failed');
      const message = `Inference failed: ${(err as Error).message}`;
      return {
        outcomes: failAll(await rowCount(job.data), 'inference_failed', message),
        idTexts: [],
      };
    });
    return { ...result, rows: outcomes.length, finished: await finish(job, outcomes, idTexts) };
  };
}
