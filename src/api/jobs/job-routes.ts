import { createHash } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { ApiError } from '../../shared/errors.js';
import type { PredictJobData } from '../../shared/jobs.js';
import { inputHash } from '../../shared/input-hash.js';
import { JobRequestSchema, parseOrThrow, toInput } from '../../shared/schemas.js';
import { assertAccepting, type ApiDeps, type AppEnv } from '../deps.js';
import { readJson } from '../http/request-body.js';
import { cacheScope, jobRefOf, ownerOf } from '../http/owner.js';
import { askedWaitS } from '../http/prefer.js';
import { accepted } from './accepted.js';

/** The public id in the path and the job it names for this request's owner (404 otherwise). */
async function jobParam(c: Context<AppEnv>, deps: ApiDeps) {
  const id = c.req.param('id') ?? '';
  const owner = ownerOf(c);
  return { id, owner, ref: await jobRefOf(deps, owner, id) };
}

function idempotencyKeyOf(c: Context<AppEnv>): string | undefined {
  const key = c.req.header('idempotency-key');
  if (key !== undefined && (key.length === 0 || key.length > 255)) {
    throw new ApiError('validation_error', 'Idempotency-Key must be 1 to 255 characters.', [
      { path: 'Idempotency-Key', message: 'must be 1 to 255 characters' },
    ]);
  }
  return key;
}

/** POST /v1/jobs, GET and DELETE /v1/jobs/{id}. */
export function jobRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { config, repository, keys, jobs, depth } = deps;

  app.post('/v1/jobs', async (c) => {
    const idempotencyKey = idempotencyKeyOf(c);
    const body = parseOrThrow(JobRequestSchema, await readJson(c));
    const model = repository.resolve(body.model, body.version);
    const input = toInput(body, model.rowSize, config.MAX_INSTANCES);
    assertAccepting(deps);
    depth.check();
    const owner = ownerOf(c);
    const ids = await deps.ids.ids();
    const hash = inputHash(model.name, model.version, input.rows, input.values);
    const data: PredictJobData = {
      model: model.name,
      version: model.version,
      rows: input.rows,
      values: input.flat,
      format: 'task',
      single: input.single,
      cacheKey: config.CACHE_TTL_S > 0 ? keys.cache(cacheScope(config, owner), hash) : undefined,
      requestId: c.get('requestId'),
      owner,
    };
    if (idempotencyKey === undefined) {
      const { ref } = await jobs.submit({ data, priority: body.priority });
      return accepted(c, deps, ids.encode(owner, ref), ref);
    }
    // Bound to what was asked (not to the version it resolved to), so a retry stays a retry.
    const asked = inputHash(body.model, body.version ?? '', input.rows, input.values);
    const fingerprint = createHash('sha256')
      .update(`${asked}\0${input.single}\0${body.priority ?? ''}`)
      .digest('hex');
    const { ref } = await jobs.submitIdempotent(owner, idempotencyKey, fingerprint, {
      data,
      priority: body.priority,
    });
    return accepted(c, deps, ids.encode(owner, ref), ref);
  });

  app.get('/v1/jobs/:id', async (c) => {
    const { id, owner, ref } = await jobParam(c, deps);
    let view = await jobs.view(owner, ref, id);
    const waitS = askedWaitS(c.req.query('wait'), c.req.header('prefer'), config.MAX_WAIT_S);
    if (waitS > 0 && (view.status === 'queued' || view.status === 'active')) {
      const outcome = await jobs.waitFor(ref, waitS * 1000);
      view = jobs.settled(view, ref, outcome) ?? (await jobs.view(owner, ref, id));
    }
    return c.json(view);
  });

  app.delete('/v1/jobs/:id', async (c) => {
    const { id, owner, ref } = await jobParam(c, deps);
    await jobs.cancel(owner, ref, id);
    return c.body(null, 204);
  });

  return app;
}
