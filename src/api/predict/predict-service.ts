import { ApiError, ERROR_CATALOGUE, type ErrorCode, type JobFailure } from '../../shared/errors.js';
import { inputHash } from '../../shared/input-hash.js';
import {
  isCacheEntry,
  partResult,
  type PredictJobData,
  type PredictJobResult,
} from '../../shared/jobs.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import type { ValidatedInput } from '../../shared/schemas.js';
import { assertAccepting, type ApiDeps } from '../deps.js';
import { JobService, type ResultBody } from '../jobs/job-service.js';
import { cacheScope } from '../http/owner.js';
import { claimKey, readLooked, type Looked } from './claims.js';
import { ownerTag, PublicIds, type JobRef, type Owner } from '../jobs/public-ids.js';

/** The ApiError a failed job is answered with. */
export function failureError(failure: JobFailure): ApiError {
  const code = (failure.code in ERROR_CATALOGUE ? failure.code : 'internal_error') as ErrorCode;
  return new ApiError(code, failure.message);
}

/** How long to wait and who asked. */
export interface RunOptions {
  /** Longest wait for the result, milliseconds; 0 answers `accepted` at once on a cache miss. */
  waitMs: number;
  /** Owner of the request: its jobs and ids are this owner's alone. */
  owner: Owner;
  /** Request id for the job's logs. */
  requestId?: string;
  /** The HTTP request served, if any: one that arrived before shutdown began is served to the end. */
  request?: Request;
}

/** A job to run: its payload (without the cache key) and the content hash of its inputs. */
export interface JobSpec {
  data: Omit<PredictJobData, 'cacheKey' | 'owner'>;
  /** Keys the result cache and the coalescing of identical in-flight requests. */
  hash: string;
}

/** What a run came to: a result (from the cache or a finished job), or a job still running. */
export type JobRun =
  | { status: 'completed'; id: string; result: PredictJobResult; cached: boolean; cacheMs?: number }
  | { status: 'accepted'; id: string; ref: JobRef; cacheMs?: number };

/**
 * The public id of a cached result: the owner's own id when this owner computed it, otherwise
 * a fresh id that names nothing, so a shared cache shows no trace of who computed the entry.
 */
function cachedId(deps: ApiDeps, owner: Owner, result: PredictJobResult): string | Promise<string> {
  if (result.owner !== owner) return PublicIds.unrelated();
  const loaded = deps.ids.loaded;
  if (loaded) return entryId(loaded, owner, result);
  return deps.ids.ids().then(
    (ids) => entryId(ids, owner, result),
    () => PublicIds.unrelated(),
  );
}

/** A run answered by cache entry `entry` (its JSON), under the id `cachedId` gives it. */
function cachedRun(
  deps: ApiDeps,
  owner: Owner,
  entry: string,
  cacheMs: number | undefined,
): JobRun | Promise<JobRun> {
  const result = JSON.parse(entry) as PredictJobResult;
  const run = (id: string): JobRun => ({ status: 'completed', id, result, cached: true, cacheMs });
  const named = cachedId(deps, owner, result);
  return typeof named === 'string' ? run(named) : named.then(run);
}

function entryId(ids: PublicIds, owner: Owner, result: PredictJobResult): string {
  try {
    return ids.encodeEntry(owner, result.jobId);
  } catch {
    return PublicIds.unrelated();
  }
}

/**
 * Runs one job through the shared pipeline: result cache, shutdown and backpressure checks,
 * submission with coalescing, and a wait for its end. A failed job throws its ApiError.
 */
export async function runJob(deps: ApiDeps, spec: JobSpec, options: RunOptions): Promise<JobRun> {
  const { config, redis, keys, jobs, depth } = deps;
  const { owner } = options;
  const cacheKey =
    config.CACHE_TTL_S > 0 ? keys.cache(cacheScope(config, owner), spec.hash) : undefined;
  const claimAt = claimKey(config, keys, owner, spec.hash, cacheKey);
  let cacheMs: number | undefined;
  let claim: string | null | undefined;
  // While most lookups miss, the cache and the claim are read by the script that queues the
  // request's job (one round trip for all of it; see OnlineGatherer.canLookUp).
  const lookup =
    cacheKey !== undefined &&
    !spec.data.tensors &&
    !deps.isShuttingDown(options.request) &&
    !deps.depth.full &&
    deps.gather.canLookUp(spec);
  if (cacheKey && !lookup) {
    const started = performance.now();
    let hit: string | null = null;
    if (claimAt !== cacheKey && (spec.data.tensors || deps.gather.mostlyHits())) {
      // While most lookups hit, the entry alone: a miss then reads its claim when it needs it.
      const entry = await redis.get(cacheKey);
      hit = isCacheEntry(entry) ? entry : null;
    } else {
      // The in-flight claim comes with the cache entry (one key, or one slot and one command):
      // a miss already knows whether an identical request is running elsewhere.
      const [read] = (await readLooked(redis, [{ cacheKey, claimKey: claimAt }])) as [Looked];
      [hit, claim] = [read.entry, read.claim];
    }
    cacheMs = performance.now() - started;
    deps.metrics.cache(hit !== null);
    deps.gather.looked(hit !== null);
    if (hit) return cachedRun(deps, owner, hit, cacheMs);
  }
  assertAccepting(deps, options.request);
  depth.check();
  const ids = await deps.ids.ids();
  if (!spec.data.tensors)
    return runGathered(
      deps,
      ids,
      spec,
      { cacheKey, claimKey: claimAt, cacheMs, claim, lookup },
      options,
    );
  const submitted = await jobs.submit({
    data: { ...spec.data, cacheKey, owner, requestId: options.requestId },
    dedupId: `${ownerTag(owner)}-${spec.hash}`,
    shardKey: spec.hash,
    waitMs: options.waitMs > 0 ? options.waitMs : undefined,
  });
  const id = ids.encode(owner, submitted.ref);
  const outcome = submitted.outcome ? await submitted.outcome : undefined;
  if (outcome?.state === 'completed')
    return { status: 'completed', id, result: outcome.result, cached: false, cacheMs };
  if (outcome?.state === 'failed') throw failureError(outcome.failure);
  if (outcome?.state === 'cancelled')
    throw new ApiError('job_not_found', `Job "${id}" was cancelled.`);
  return { status: 'accepted', id, ref: submitted.ref, cacheMs };
}

/** The online path: the request becomes one part of a gathered job (see OnlineGatherer). */
async function runGathered(
  deps: ApiDeps,
  ids: PublicIds,
  spec: JobSpec,
  looked: {
    cacheKey?: string;
    claimKey: string;
    cacheMs?: number;
    claim?: string | null;
    lookup?: boolean;
  },
  options: RunOptions,
): Promise<JobRun> {
  const { single, ...data } = spec.data;
  const { cacheKey, cacheMs } = looked;
  const started = performance.now();
  const placed = await deps.gather.place({
    data,
    single,
    hash: spec.hash,
    cacheKey,
    claimKey: looked.claimKey,
    claim: looked.claim,
    lookup: looked.lookup,
    owner: options.owner,
    requestId: options.requestId,
    waitMs: options.waitMs,
  });
  if (looked.lookup) {
    deps.metrics.cache(placed.hit !== undefined);
    deps.gather.looked(placed.hit !== undefined);
  }
  if (placed.hit !== undefined) {
    return cachedRun(deps, options.owner, placed.hit, performance.now() - started);
  }
  if (placed.coalesced) deps.metrics.coalesced.inc();
  const ref = { jobId: placed.jobId, part: placed.index };
  const id = ids.encode(options.owner, ref);
  if (!placed.wait) return { status: 'accepted', id, ref, cacheMs };
  // Queue events are best-effort: a wait that ran out reads the job once before giving up.
  const outcome =
    (await placed.wait.promise) ?? (await deps.hub.peek(placed.jobId).catch(() => undefined));
  if (!outcome) return { status: 'accepted', id, ref, cacheMs };
  if (outcome.state === 'failed') throw failureError(outcome.failure);
  if (outcome.state === 'cancelled')
    throw new ApiError('job_not_found', `Job "${id}" was cancelled.`);
  const part = partResult(outcome.result, placed.index);
  if (!part || !('results' in part))
    throw failureError(part ?? { code: 'internal_error', message: 'no result' });
  deps.metrics.jobWaited(part.queueMs);
  return { status: 'completed', id, result: part, cached: false, cacheMs };
}

/** The predict response body (API.md "Online prediction"). */
export type PredictionBody = {
  id: string;
  model: string;
  version: string;
  cached: boolean;
} & ResultBody;

/** Shapes a job result as the predict body of `model` under public id `id`. */
export function predictionBody(
  model: ModelVersion,
  id: string,
  result: PredictJobResult,
  cached: boolean,
  single: boolean,
): PredictionBody {
  return {
    id,
    model: model.name,
    version: model.version,
    cached,
    ...JobService.resultBody(result.results, single),
  };
}

/** A prediction's outcome: the predict body, or the id of the job still running. */
export type PredictionRun =
  | { status: 'completed'; body: PredictionBody; result: PredictJobResult; cacheMs?: number }
  | { status: 'accepted'; id: string; ref: JobRef; cacheMs?: number };

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
    body: predictionBody(model, run.id, run.result, run.cached, input.single),
    result: run.result,
    cacheMs: run.cacheMs,
  };
}
