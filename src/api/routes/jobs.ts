import { Hono, type Context } from 'hono';
import { ApiError } from '../../shared/errors.js';
import type { PredictJobData } from '../../shared/jobs.js';
import { inputHash } from '../../shared/input-hash.js';
import { JobRequestSchema, parseOrThrow, toInput } from '../../shared/schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { readJson } from '../middleware/body.js';
import { parsePrefer, waitSeconds } from '../prefer.js';
import { accepted } from './accepted.js';

const JOB_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

function jobIdParam(c: Context<AppEnv>): string {
  const id = c.req.param('id') ?? '';
  if (!JOB_ID_RE.test(id))
    throw new ApiError('job_not_found', `Job "${id.slice(0, 128)}" does not exist.`);
  return id;
}

/** POST /v1/jobs, GET and DELETE /v1/jobs/{id}. */
export function jobRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { config, repository, keys, jobs, depth } = deps;

  app.post('/v1/jobs', async (c) => {
    const body = parseOrThrow(JobRequestSchema, await readJson(c));
    const model = repository.resolve(body.model, body.version);
    const input = toInput(body, model.rowSize, config.MAX_INSTANCES);
    if (deps.isShuttingDown())
      throw new ApiError('unavailable', 'The server is shutting down; retry.', undefined, 1);
    depth.check();
    const hash = inputHash(model.name, model.version, input.rows, input.values);
    const data: PredictJobData = {
      model: model.name,
      version: model.version,
      rows: input.rows,
      values: input.flat,
      format: 'task',
      single: input.single,
      cacheKey: config.CACHE_TTL_S > 0 ? keys.cache(hash) : undefined,
      requestId: c.get('requestId'),
    };
    const idempotencyKey = c.req.header('idempotency-key');
    if (idempotencyKey !== undefined) {
      if (idempotencyKey.length === 0 || idempotencyKey.length > 255) {
        throw new ApiError('validation_error', 'Idempotency-Key must be 1 to 255 characters.', [
          { path: 'Idempotency-Key', message: 'must be 1 to 255 characters' },
        ]);
      }
      const { jobId } = await jobs.submitIdempotent(idempotencyKey, {
        data,
        priority: body.priority,
      });
      return accepted(c, deps, jobId);
    }
    const { jobId } = await jobs.submit({ data, priority: body.priority });
    return accepted(c, deps, jobId);
  });

  app.get('/v1/jobs/:id', async (c) => {
    const id = jobIdParam(c);
    let view = await jobs.view(id);
    const prefs = parsePrefer(c.req.header('prefer'));
    const queryWait = c.req.query('wait');
    let asked = prefs.wait;
    if (queryWait !== undefined) {
      if (!/^\d+(\.\d+)?$/.test(queryWait)) {
        throw new ApiError('validation_error', 'wait must be a number of seconds.', [
          { path: 'wait', message: 'must be a number of seconds' },
        ]);
      }
      asked = Number(queryWait);
    }
    const waitS = waitSeconds(asked ?? 0, 0, config.MAX_WAIT_S);
    if (waitS > 0 && (view.status === 'queued' || view.status === 'active')) {
      const outcome = await jobs.waitFor(id, waitS * 1000);
      view = jobs.settled(view, outcome) ?? (await jobs.view(id));
    }
    return c.json(view);
  });

  app.delete('/v1/jobs/:id', async (c) => {
    await jobs.cancel(jobIdParam(c));
    return c.body(null, 204);
  });

  return app;
}
