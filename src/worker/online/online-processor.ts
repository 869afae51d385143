import { UnrecoverableError, type Job } from 'bullmq';
import { formatFailure } from '../../shared/errors.js';
import type { PredictJobData, PredictJobResult } from '../../shared/jobs.js';
import type { Logger } from '../../shared/logger.js';
import type { ReplyMessage } from '../../shared/replies.js';
import type { CacheWriter, ResultWriter } from './cache-writer.js';
import type { ModelPool } from '../inference/model-pool.js';
import { runDirectJob, wholeTensorResults } from './whole-tensor-job.js';
import { runParts } from './gathered-parts.js';
import { ModelOutputError, toInstanceResults } from '../inference/output-shaping.js';

/** What the job processor needs. */
export interface ProcessorDeps {
  pool: ModelPool;
  /** Writes cache entries (when the cache is on) and replies to the replica that waits. */
  cache?: CacheWriter;
  /** The reply channel of an API replica (see shared/replies.ts). */
  replyChannel?: (replicaId: string) => string;
  logger: Logger;
  /** Rescans the model folder for a version not loaded yet that a job created at `sinceMs` names. */
  onMissingModel?: (sinceMs: number) => Promise<void>;
}

/** What the processor reads of a job: a BullMQ job, or one taken from the fast lane. */
export type OnlineJob = Pick<
  Job<PredictJobData, PredictJobResult>,
  'id' | 'data' | 'timestamp' | 'processedOn'
>;

function validate(data: PredictJobData, rowSize: number): Float32Array {
  const { rows, values } = data;
  if (!Number.isInteger(rows) || rows < 1 || !Array.isArray(values)) {
    throw new UnrecoverableError(formatFailure('validation_error', 'job payload is malformed'));
  }
  // Float32Array.set would zero-pad a short row silently, so widths are checked here too.
  if (values.length !== rows * rowSize) {
    throw new UnrecoverableError(
      formatFailure(
        'validation_error',
        `expected ${rows * rowSize} values for ${rows} rows, got ${values.length}`,
      ),
    );
  }
  if (!values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new UnrecoverableError(
      formatFailure('validation_error', 'every value must be a finite number'),
    );
  }
  return Float32Array.from(values);
}

/** Builds the BullMQ processor: job -> batch slot -> per-instance results -> reply. */
export function createProcessor(deps: ProcessorDeps) {
  const run = runJob(deps);
  /** `writer`: where the cache entries and the reply go (default: sent at once). */
  return async (
    job: OnlineJob,
    writer: ResultWriter | undefined = deps.cache,
  ): Promise<PredictJobResult> => {
    const result = await run(job, writer);
    const { replyTo } = job.data;
    if (replyTo && writer && deps.replyChannel) {
      // The waiting replica hears of the result now, before BullMQ's bookkeeping of the job, in
      // the same round trip as the cache writes; a lost message costs it one read of the job.
      const message: ReplyMessage = { jobId: job.id ?? '', state: 'completed', result };
      void writer
        .send(deps.replyChannel(replyTo), JSON.stringify(message))
        .catch((err: unknown) => deps.logger.debug({ err }, 'reply not sent'));
    }
    return result;
  };
}

function runJob(deps: ProcessorDeps) {
  return async (job: OnlineJob, cache: ResultWriter | undefined): Promise<PredictJobResult> => {
    const data = job.data;
    // No child logger per job: making one costs more than the rest of a small job's bookkeeping.
    const bindings = { jobId: job.id, requestId: data.requestId };
    let loaded = deps.pool.get(data.model, data.version);
    if (!loaded && deps.onMissingModel) {
      // The API may have seen a new version folder before this worker's next rescan.
      await deps.onMissingModel(job.timestamp);
      loaded = deps.pool.get(data.model, data.version);
    }
    if (!loaded) {
      throw new UnrecoverableError(
        formatFailure(
          'version_not_found',
          `model ${data.model} version ${data.version} is not loaded by this worker`,
        ),
      );
    }
    const queueMs = Math.max(0, (job.processedOn ?? Date.now()) - job.timestamp);
    if (data.parts && !data.tensors) {
      const values = validate(data, loaded.model.rowSize);
      return runParts(job.id ?? '', loaded, data, values, queueMs, cache, deps.logger);
    }
    // Whole tensors (several inputs, free dimensions) run alone; rows share a batch.
    const slice = data.tensors
      ? await runDirectJob(deps.pool, loaded.model, data.tensors)
      : await loaded.batcher
          .submit(data.rows, validate(data, loaded.model.rowSize))
          .catch((err: unknown) => {
            // Transient until proven otherwise: BullMQ retries with backoff, then fails with this text.
            throw new Error(
              formatFailure('inference_failed', `Inference failed: ${(err as Error).message}`),
            );
          });
    let results;
    try {
      results = data.tensors
        ? wholeTensorResults(slice.outputs)
        : toInstanceResults(loaded.model, slice.outputs, data.rows, data.format);
    } catch (err) {
      if (err instanceof ModelOutputError) {
        throw new UnrecoverableError(
          formatFailure(
            'model_output_invalid',
            `The model produced invalid output: ${err.message}.`,
          ),
        );
      }
      throw err;
    }
    const result: PredictJobResult = {
      results,
      jobId: job.id ?? '',
      queueMs,
      inferMs: slice.ms,
      batchSize: slice.batchSize,
      single: data.single,
      finishedAt: Date.now(),
    };
    if (cache && data.cacheKey) {
      // A failed cache write costs a future hit, never this result.
      const entry: PredictJobResult = { ...result, owner: data.owner };
      // Not awaited: it leaves in the same pipeline as the reply (see CacheWriter).
      void cache.write(data.cacheKey, JSON.stringify(entry)).catch((err: unknown) => {
        deps.logger.warn({ err, ...bindings }, 'result cache write failed');
      });
    }
    return result;
  };
}
