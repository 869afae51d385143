import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { ApiError } from '../../shared/errors.js';
import { AcceptedJobSchema, PredictionSchema } from '../../shared/contracts/results.js';
import { PreferHeaderSchema } from '../../shared/contracts/common.js';
import {
  parseOrThrow,
  PredictRequestSchema,
  toInput,
  validationError,
} from '../../shared/schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { readJson } from '../http/request-body.js';
import { parsePrefer, waitSeconds } from '../http/prefer.js';
import { headerOf } from '../http/node-request.js';
import { addTiming, respondJson } from '../http/request-frame.js';
import { ownerOf } from '../http/owner.js';
import { accepted } from '../jobs/accepted.js';
import {
  API_KEY_SECURITY,
  COMMON_V1,
  errors,
  SUBMIT_ERRORS,
  json,
  ModelPath,
  ModelVersionPath,
  RETRY_AFTER,
  VersionHeader,
  VersionQuery,
} from '../openapi/common.js';
import { documentOnly, routeApp, type RouteApp } from '../openapi/route.js';
import { runPrediction } from './predict-service.js';

export { failureError } from './predict-service.js';

/** 202 of work not done in time (predict and POST /v1/jobs). */
export const ACCEPTED_RESPONSE = {
  description: 'Queued and not finished in time; poll `links.self`.',
  headers: RETRY_AFTER.extend({ Location: z.string() }),
  content: json(AcceptedJobSchema),
};

function predictRoute(
  path: string,
  summary: string,
  request: { params: z.ZodObject; query?: z.ZodObject; headers: z.ZodObject },
) {
  return createRoute({
    method: 'post',
    path,
    tags: ['predict'],
    summary,
    security: API_KEY_SECURITY,
    request: {
      ...request,
      body: { required: true, content: json(PredictRequestSchema) },
    },
    responses: {
      200: {
        description: 'The prediction (from the cache when `cached` is true).',
        headers: z.object({ 'Server-Timing': z.string(), 'X-Request-Id': z.string() }),
        content: json(PredictionSchema),
      },
      202: ACCEPTED_RESPONSE,
      ...errors(...SUBMIT_ERRORS, 'model_output_invalid', 'inference_failed', ...COMMON_V1),
    },
  });
}

const byModel = {
  params: ModelPath,
  query: VersionQuery,
  headers: VersionHeader.extend(PreferHeaderSchema.shape),
};
const PredictRoute = predictRoute(
  '/v1/models/{model}/predict',
  'Predict one instance (`features`) or many (`instances`).',
  byModel,
);
const PredictAliasRoute = predictRoute(
  '/v1/models/{model}:predict',
  'TF Serving / KServe V1 form of predict.',
  byModel,
);
const PredictVersionRoute = predictRoute(
  '/v1/models/{model}/versions/{version}/predict',
  'Predict with a pinned version.',
  { params: ModelVersionPath, headers: PreferHeaderSchema },
);

/**
 * A `?version=` or `X-Model-Version` that is not a version is the 422 that names it, even when
 * the other one chose a version that exists.
 */
function checkVersionInputs(query: string | undefined, header: string | undefined): void {
  const checked = VersionQuery.merge(VersionHeader).safeParse({
    version: query,
    'x-model-version': header,
  });
  if (!checked.success) throw validationError(checked.error);
}

/**
 * POST /v1/models/{model}/predict, its `:predict` alias and the per-version form. The hot path
 * of the API: served as plain routes (their OpenAPI definitions are documented only), the model
 * and version checked by resolving them, headers read from Node's request, the answer built by
 * respondJson. A schema check of path, query and headers would only repeat what resolving the
 * model proves, at a cost of its own on every cache hit.
 */
export function predictRoutes(deps: ApiDeps): RouteApp {
  const app = routeApp();
  const { config, repository } = deps;

  async function predict(c: Context<AppEnv>, name: string, pathVersion?: string) {
    // The version in the path, else ?version= or X-Model-Version (usually neither is sent).
    const query = pathVersion === undefined ? c.req.query('version') : undefined;
    const header = pathVersion === undefined ? headerOf(c, 'x-model-version') : undefined;
    const model = repository.resolve(name, (pathVersion ?? query ?? header) || undefined);
    if (query !== undefined || header !== undefined) checkVersionInputs(query, header);
    const body = parseOrThrow(PredictRequestSchema, await readJson(c));
    const input = toInput(body, model.rowSize, config.MAX_INSTANCES);
    const prefs = parsePrefer(headerOf(c, 'prefer'));
    const waitS = prefs.respondAsync
      ? 0
      : waitSeconds(prefs.wait, config.DEFAULT_WAIT_S, config.MAX_WAIT_S);
    const run = await runPrediction(deps, model, input, {
      waitMs: waitS * 1000,
      owner: ownerOf(c),
      requestId: c.get('requestId'),
      request: c.req.raw,
    });
    if (run.cacheMs !== undefined) addTiming(c, 'cache', run.cacheMs);
    if (run.status === 'accepted') return accepted(c, deps, run.id, run.ref);
    if (!run.body.cached) {
      addTiming(c, 'queue', run.result.queueMs);
      addTiming(c, 'infer', run.result.inferMs);
    }
    return respondJson(c, run.body satisfies z.infer<typeof PredictionSchema>);
  }

  documentOnly(app, PredictRoute);
  app.post('/v1/models/:model/predict', (c) => predict(c, c.req.param('model')));
  documentOnly(app, PredictVersionRoute);
  app.post('/v1/models/:model/versions/:version/predict', (c) =>
    predict(c, c.req.param('model'), c.req.param('version')),
  );
  // TF Serving / KServe V1 form: POST /v1/models/{model}:predict, one path segment for Hono.
  documentOnly(app, PredictAliasRoute);
  app.post('/v1/models/:spec', (c) => {
    const spec = c.req.param('spec');
    if (!spec.endsWith(':predict')) throw new ApiError('not_found', `No route POST ${c.req.path}.`);
    return predict(c, spec.slice(0, -':predict'.length));
  });
  return app;
}
