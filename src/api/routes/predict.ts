import type { Context } from 'hono';
import { Hono } from 'hono';
import { setMetric } from 'hono/timing';
import { ApiError, ERROR_CATALOGUE, type ErrorCode, type JobFailure } from '../../shared/errors.js';
import { inputHash } from '../../shared/input-hash.js';
import type { PredictJobData, PredictJobResult } from '../../shared/jobs.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import { parseOrThrow, PredictRequestSchema, toInput } from '../../shared/schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { JobService } from '../job-service.js';
import { readJson } from '../middleware/body.js';
import { parsePrefer, waitSeconds } from '../prefer.js';
import { accepted } from './accepted.js';

/** The ApiError a failed job is answered with. */
export function failureError(failure: JobFailure): ApiError {
  const code = (failure.code in ERROR_CATALOGUE ? failure.code : 'internal_error') as ErrorCode;
  return new ApiError(code, failure.message);
}

function answer(
  c: Context<AppEnv>,
  model: ModelVersion,
  result: PredictJobResult,
  cached: boolean,
  single: boolean,
) {
  if (!cached) {
    setMetric(c, 'queue', result.queueMs);
    setMetric(c, 'infer', result.inferMs);
  }
  return c.json({
    id: result.jobId,
    model: model.name,
    version: model.version,
    cached,
    ...JobService.resultBody(result.results, single),
  });
}

/** POST /v1/models/{model}/predict, its `:predict` alias and the per-version form. */
export function predictRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { config, repository, redis, keys, jobs, depth } = deps;

  async function predict(c: Context<AppEnv>, name: string, pathVersion?: string) {
    const asked = pathVersion ?? c.req.query('version') ?? c.req.header('x-model-version');
    const model = repository.resolve(name, asked || undefined);
    const body = parseOrThrow(PredictRequestSchema, await readJson(c));
    const input = toInput(body, model.rowSize, config.MAX_INSTANCES);
    const hash = inputHash(model.name, model.version, input.rows, input.values);
    const cacheKey = config.CACHE_TTL_S > 0 ? keys.cache(hash) : undefined;
    if (cacheKey) {
      const started = performance.now();
      const hit = await redis.get(cacheKey);
      setMetric(c, 'cache', performance.now() - started);
      if (hit) return answer(c, model, JSON.parse(hit) as PredictJobResult, true, input.single);
    }
    if (deps.isShuttingDown())
      throw new ApiError('unavailable', 'The server is shutting down; retry.', undefined, 1);
    depth.check();
    const prefs = parsePrefer(c.req.header('prefer'));
    const waitS = prefs.respondAsync
      ? 0
      : waitSeconds(prefs.wait, config.DEFAULT_WAIT_S, config.MAX_WAIT_S);
    const data: PredictJobData = {
      model: model.name,
      version: model.version,
      rows: input.rows,
      values: input.flat,
      format: 'task',
      single: input.single,
      cacheKey,
      requestId: c.get('requestId'),
    };
    const submitted = await jobs.submit({
      data,
      dedupId: hash,
      waitMs: waitS > 0 ? waitS * 1000 : undefined,
    });
    const outcome = submitted.outcome ? await submitted.outcome : undefined;
    if (outcome?.state === 'completed')
      return answer(c, model, outcome.result, false, input.single);
    if (outcome?.state === 'failed') throw failureError(outcome.failure);
    if (outcome?.state === 'cancelled')
      throw new ApiError('job_not_found', `Job "${submitted.jobId}" was cancelled.`);
    return accepted(c, deps, submitted.jobId);
  }

  app.post('/v1/models/:model/predict', (c) => predict(c, c.req.param('model')));
  app.post('/v1/models/:model/versions/:version/predict', (c) =>
    predict(c, c.req.param('model'), c.req.param('version')),
  );
  // TF Serving / KServe V1 form: POST /v1/models/{model}:predict
  app.post('/v1/models/:spec', (c) => {
    const spec = c.req.param('spec');
    if (!spec.endsWith(':predict')) throw new ApiError('not_found', `No route POST ${c.req.path}.`);
    return predict(c, spec.slice(0, -':predict'.length));
  });
  return app;
}
