import type { Context } from 'hono';
import { Hono } from 'hono';
import { setMetric } from 'hono/timing';
import { ApiError } from '../../shared/errors.js';
import { parseOrThrow, PredictRequestSchema, toInput } from '../../shared/schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { readJson } from '../http/request-body.js';
import { runPrediction } from './predict-service.js';
import { parsePrefer, waitSeconds } from '../http/prefer.js';
import { ownerOf } from '../http/owner.js';
import { accepted } from '../jobs/accepted.js';

export { failureError } from './predict-service.js';

/** POST /v1/models/{model}/predict, its `:predict` alias and the per-version form. */
export function predictRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { config, repository } = deps;

  async function predict(c: Context<AppEnv>, name: string, pathVersion?: string) {
    const asked = pathVersion ?? c.req.query('version') ?? c.req.header('x-model-version');
    const model = repository.resolve(name, asked || undefined);
    const body = parseOrThrow(PredictRequestSchema, await readJson(c));
    const input = toInput(body, model.rowSize, config.MAX_INSTANCES);
    const prefs = parsePrefer(c.req.header('prefer'));
    const waitS = prefs.respondAsync
      ? 0
      : waitSeconds(prefs.wait, config.DEFAULT_WAIT_S, config.MAX_WAIT_S);
    const run = await runPrediction(deps, model, input, {
      waitMs: waitS * 1000,
      owner: ownerOf(c),
      requestId: c.get('requestId'),
    });
    if (run.cacheMs !== undefined) setMetric(c, 'cache', run.cacheMs);
    if (run.status === 'accepted') return accepted(c, deps, run.id, run.ref);
    if (!run.body.cached) {
      setMetric(c, 'queue', run.result.queueMs);
      setMetric(c, 'infer', run.result.inferMs);
    }
    return c.json(run.body);
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
