import { ApiError, ERROR_CATALOGUE, type ErrorCode, type JobFailure } from '../shared/errors.js';
import { inputHash } from '../shared/input-hash.js';
import { partId, partResult, type PredictJobData, type PredictJobResult } from '../shared/jobs.js';
import type { ModelVersion } from '../shared/model-repository.js';
import type { ValidatedInput } from '../shared/schemas.js';
import type { ApiDeps } from './deps.js';
import { JobService, type ResultBody } from './job-service.js';

/** The ApiError a failed job is answered with. */
export function failureError(failure: JobFailure): ApiError {
  const code = (failure.code in ERROR_CATALOGUE ? failure.code : 'internal_error') as ErrorCode;
  return new ApiError(code, failure.message);
}

/** How long to wait and who asked. */
export interface RunOptions {
  /** Longest wait for the result, milliseconds; 0 answers `accepted` at once on a cache miss. */
  waitMs: number;
  /** Request id for the job's logs. */
  requestId?: string;
}

/** A job to run: its payload (without the cache key) and the content hash of its inputs. */
export interface JobSpec {
  data: Omit<PredictJobData, 'cacheKey'>;
  /** Keys the result cache and BullMQ's deduplication of identical in-flight jobs. */
  hash: string;
}

/** What a run came to: a result (from the cache or a finished job), or a job still running. */
export type JobRun =
  | { status: 'completed'; result: PredictJobResult; cached: boolean; cacheMs?: number }
  | { status: 'accepted'; jobId: string; cacheMs?: number };

/**
 * Runs one job through the shared pipeline: result cache, shutdown and backpressure checks,
 * submission with deduplication, and a wait for its end. A failed job throws its ApiError.
 */
export async function runJob(deps: ApiDeps, spec: JobSpec, options: RunOptions): Promise<JobRun> {
  const { config, redis, keys, jobs, depth } = deps;
  const cacheKey = config.CACHE_TTL_S > 0 ? keys.cache(spec.hash) : undefined;
  let cacheMs: number | undefined;
  if (cacheKey) {
    const started = performance.now();
    const hit = await redis.get(cacheKey);
    cacheMs = performance.now() - started;
    deps.metrics.cache(hit !== null);
    if (hit)
      return {
        status: 'completed',
        result: JSON.parse(hit) as PredictJobResult,
        cached: true,
        cacheMs,
      };
  }
  if (deps.isShuttingDown())
    throw new ApiError('unavailable', 'The server is shutting down; retry.', undefined, 1);
  depth.check();
  if (!spec.data.tensors) return runGathered(deps, spec, cacheKey, cacheMs, options);
  const submitted = await jobs.submit({
    data: { ...spec.data, cacheKey, requestId: options.requestId },
    dedupId: spec.hash,
    waitMs: options.waitMs > 0 ? options.waitMs : undefined,
  });
  const outcome = submitted.outcome ? await submitted.outcome : undefined;
  if (outcome?.state === 'completed')
    return { status: 'completed', result: outcome.result, cached: false, cacheMs };
  if (outcome?.state === 'failed') throw failureError(outcome.failure);
  if (outcome?.state === 'cancelled')
    throw new ApiError('job_not_found', `Job "${submitted.jobId}" was cancelled.`);
  return { status: 'accepted', jobId: submitted.jobId, cacheMs };
}

/** The online path: the request becomes one part of a gathered job (see OnlineGatherer). */
async function runGathered(
  deps: ApiDeps,
  spec: JobSpec,
  cacheKey: string | undefined,
  cacheMs: number | undefined,
  options: RunOptions,
): Promise<JobRun> {
  const { single, ...data } = spec.data;
  const placed = await deps.gather.place({
    data,
    single,
    hash: spec.hash,
    cacheKey,
    requestId: options.requestId,
    waitMs: options.waitMs,
  });
  if (placed.coalesced) deps.metrics.coalesced.inc();
  const id = partId(placed.jobId, placed.index);
  if (!placed.wait) return { status: 'accepted', jobId: id, cacheMs };
  // Queue events are best-effort: a wait that ran out reads the job once before giving up.
  const outcome =
    (await placed.wait.promise) ?? (await deps.hub.peek(placed.jobId).catch(() => undefined));
  if (!outcome) return { status: 'accepted', jobId: id, cacheMs };
  if (outcome.state === 'failed') throw failureError(outcome.failure);
  if (outcome.state === 'cancelled')
    throw new ApiError('job_not_found', `Job "${id}" was cancelled.`);
  const part = partResult(outcome.result, placed.index);
  if (!part || !('results' in part))
    throw failureError(part ?? { code: 'internal_error', message: 'no result' });
  deps.metrics.jobWaited(part.queueMs);
  return { status: 'completed', result: part, cached: false, cacheMs };
}

/** The predict response body (API.md "Online prediction"). */
export type PredictionBody = {
  id: string;
  model: string;
  version: string;
  cached: boolean;
} & ResultBody;

/** Shapes a job result as the predict body of `model`. */
export function predictionBody(
  model: ModelVersion,
  result: PredictJobResult,
  cached: boolean,
  single: boolean,
): PredictionBody {
  return {
    id: result.jobId,
    model: model.name,
    version: model.version,
    cached,
    ...JobService.resultBody(result.results, single),
  };
}

/** A prediction's outcome: the predict body, or the id of the job still running. */
export type PredictionRun =
  | { status: 'completed'; body: PredictionBody; result: PredictJobResult; cacheMs?: number }
  | { status: 'accepted'; jobId: string; cacheMs?: number };

/** Predicts validated instances of `model` (task-shaped results): cache, queue, wait. */
export async function runPrediction(
  deps: ApiDeps,
  model: ModelVersion,
  input: ValidatedInput,
  options: RunOptions,
): Promise<PredictionRun> {
  const data: JobSpec['data'] = {
    model: model.name,
    version: model.version,
    rows: input.rows,
    values: input.flat,
    format: 'task',
    single: input.single,
  };
  const hash = inputHash(model.name, model.version, input.rows, input.values);
  const run = await runJob(deps, { data, hash }, options);
  if (run.status === 'accepted') return run;
  return {
    status: 'completed',
    body: predictionBody(model, run.result, run.cached, input.single),
    result: run.result,
    cacheMs: run.cacheMs,
  };
}
