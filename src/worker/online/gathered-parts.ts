import { UnrecoverableError } from 'bullmq';
import { formatFailure } from '../../shared/errors.js';
import {
  partId,
  type JobPart,
  type PartResult,
  type PredictJobData,
  type PredictJobResult,
} from '../../shared/jobs.js';
import type { Logger } from '../../shared/logger.js';
import type { ResultWriter } from './cache-writer.js';
import type { LoadedModel } from '../inference/model-pool.js';
import { ModelOutputError, toInstanceResults } from '../inference/output-shaping.js';

interface PartRun {
  part: JobPart;
  outcome: PartResult;
  ms: number;
  batchSize: number;
  /** A session error (not the input's fault): retried when every part has one. */
  transient: boolean;
  skipped?: boolean;
}

async function runPart(
  loaded: LoadedModel,
  data: PredictJobData,
  part: JobPart,
  values: Float32Array,
): Promise<PartRun> {
  if (part.skip || part.rows === 0)
    return { part, outcome: {}, ms: 0, batchSize: 0, transient: false, skipped: true };
  try {
    const slice = await loaded.batcher.submit(part.rows, values);
    try {
      const results = toInstanceResults(loaded.model, slice.outputs, part.rows, data.format);
      return {
        part,
        outcome: { results },
        ms: slice.ms,
        batchSize: slice.batchSize,
        transient: false,
      };
    } catch (err) {
      if (!(err instanceof ModelOutputError)) throw err;
      const error = {
        code: 'model_output_invalid',
        message: `The model produced invalid output: ${err.message}.`,
      };
      return {
        part,
        outcome: { error },
        ms: slice.ms,
        batchSize: slice.batchSize,
        transient: false,
      };
    }
  } catch (err) {
    const error = {
      code: 'inference_failed',
      message: `Inference failed: ${(err as Error).message}`,
    };
    return { part, outcome: { error }, ms: 0, batchSize: 0, transient: true };
  }
}

/**
 * Runs a gathered job: each request's rows go to the batcher as their own submission (so they
 * still share one inference run, yet a bad input fails only its own request), each part gets
 * its own result and cache entry.
 */
export async function runParts(
  jobId: string,
  loaded: LoadedModel,
  data: PredictJobData,
  values: Float32Array,
  queueMs: number,
  cache: ResultWriter | undefined,
  logger: Logger,
): Promise<PredictJobResult> {
  const parts = data.parts ?? [];
  const width = Math.max(loaded.model.rowSize, 1);
  if (parts.reduce((n, p) => n + p.rows, 0) !== data.rows) {
    throw new UnrecoverableError(
      formatFailure('validation_error', 'job parts do not add up to its rows'),
    );
  }
  let offset = 0;
  const runs = await Promise.all(
    parts.map((part) => {
      const slice = values.subarray(offset * width, (offset + part.rows) * width);
      offset += part.rows;
      return runPart(loaded, data, part, slice);
    }),
  );
  const live = runs.filter((r) => !r.skipped);
  const first = live.find((r) => !r.transient) ?? live[0];
  if (live.length > 0 && live.every((r) => r.transient))
    throw new Error(
      formatFailure('inference_failed', runs[0]?.outcome.error?.message ?? 'Inference failed'),
    );
  const result: PredictJobResult = {
    results: [],
    jobId,
    queueMs,
    inferMs: first?.ms ?? 0,
    batchSize: first?.batchSize ?? 0,
    parts: runs.map((r) => ({ ...r.outcome, single: r.part.single })),
    finishedAt: Date.now(),
  };
  if (cache?.caching) {
    const writes = runs.map((r, i) => {
      if (!r.part.cacheKey || !r.outcome.results) return Promise.resolve();
      const entry: PredictJobResult = {
        ...result,
        parts: undefined,
        results: r.outcome.results,
        jobId: partId(jobId, i),
        owner: r.part.owner,
      };
      return cache.write(r.part.cacheKey, JSON.stringify(entry));
    });
    // A failed cache write costs a future hit, never this result. Not awaited: the writes leave
    // in the same pipeline as the reply (see CacheWriter).
    void Promise.all(writes).catch((err: unknown) =>
      logger.warn({ err, jobId }, 'result cache write failed'),
    );
  }
  return result;
}
