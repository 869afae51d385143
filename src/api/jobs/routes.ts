import { createHash } from 'node:crypto';
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { z } from 'zod';
import { PreferHeaderSchema, WaitQuerySchema } from '../../shared/contracts/common.js';
import { JobViewSchema } from '../../shared/contracts/jobs.js';
import type { PredictJobData } from '../../shared/jobs.js';
import { inputHash } from '../../shared/input-hash.js';
import { JobRequestSchema, parseOrThrow, toInput } from '../../shared/schemas.js';
import { assertAccepting, type ApiDeps, type AppEnv } from '../deps.js';
import { readJson } from '../http/request-body.js';
import { cacheScope, jobRefOf, ownerOf } from '../http/owner.js';
import { deferredJson, type Departure } from '../http/deferred-json.js';
import { askedWaitS } from '../http/prefer.js';
import {
  API_KEY_SECURITY,
  COMMON_V1,
  errors,
  JobIdPath,
  json,
  SUBMIT_ERRORS,
} from '../openapi/common.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';
import { ACCEPTED_RESPONSE } from '../predict/routes.js';
import { accepted } from './accepted.js';
import { headerOf } from '../http/node-request.js';

const IdempotencyHeader = z.object({
  'idempotency-key': z.string().min(1).max(255, 'must be 1 to 255 characters').optional().meta({
    description: 'A retried submission with the same key returns the first job.',
  }),
});

const SubmitRoute = createRoute({
  method: 'post',
  path: '/v1/jobs',
  tags: ['jobs'],
  summary: 'Queue an asynchronous job.',
  security: API_KEY_SECURITY,
  request: {
    headers: IdempotencyHeader,
    body: { required: true, content: json(JobRequestSchema) },
  },
  responses: {
    202: ACCEPTED_RESPONSE,
    ...errors(...SUBMIT_ERRORS, 'idempotency_key_reused', ...COMMON_V1),
  },
});

const ViewRoute = createRoute({
  method: 'get',
  path: '/v1/jobs/{id}',
  tags: ['jobs'],
  summary: 'Status and result of a job; long-polls with `Prefer: wait=N` or `?wait=N`.',
  security: API_KEY_SECURITY,
  request: { params: JobIdPath, query: WaitQuerySchema, headers: PreferHeaderSchema },
  responses: {
    200: { description: 'The job.', content: json(JobViewSchema) },
    ...errors('job_not_found', 'validation_error', ...COMMON_V1),
  },
});

const CancelRoute = createRoute({
  method: 'delete',
  path: '/v1/jobs/{id}',
  tags: ['jobs'],
  summary: 'Cancel a queued job.',
  security: API_KEY_SECURITY,
  request: { params: JobIdPath },
  responses: {
    204: { description: 'Cancelled.' },
    ...errors('job_not_found', 'job_not_cancellable', ...COMMON_V1),
  },
});

/** The public id in the path and the job it names for this request's owner (404 otherwise). */
async function jobParam(c: Context<AppEnv>, deps: ApiDeps) {
  const id = c.req.param('id') ?? '';
  const owner = ownerOf(c);
  return { id, owner, ref: await jobRefOf(deps, owner, id) };
}

/** POST /v1/jobs, GET and DELETE /v1/jobs/{id}. */
export function jobRoutes(deps: ApiDeps): RouteApp {
  const app = routeApp();
  const { config, repository, keys, jobs, depth } = deps;

  mount(app, SubmitRoute, async (c) => {
    // Checked against IdempotencyHeader (1 to 255 characters) before the body is read.
    const idempotencyKey = headerOf(c, 'idempotency-key');
    const body = parseOrThrow(JobRequestSchema, await readJson(c));
    const model = repository.resolve(body.model, body.version);
    const input = toInput(body, model.rowSize, config.MAX_INSTANCES);
    assertAccepting(deps, c.req.raw);
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
      const { ref } = await jobs.submit({ data, priority: body.priority, shardKey: hash });
      return accepted(c, deps, ids.encode(owner, ref), ref, true);
    }
    // Bound to what was asked (not to the version it resolved to), so a retry stays a retry.
    const asked = inputHash(body.model, body.version ?? '', input.rows, input.values);
    const fingerprint = createHash('sha256')
      .update(`${asked}\0${input.single}\0${body.priority ?? ''}`)
      .digest('hex');
    const { ref, replayed } = await jobs.submitIdempotent(owner, idempotencyKey, fingerprint, {
      data,
      priority: body.priority,
      shardKey: hash,
    });
    return accepted(c, deps, ids.encode(owner, ref), ref, !replayed);
  });

  // An id of the wrong form names no job: 404, as an unknown one.
  const exists = (c: Context<AppEnv>) => jobRefOf(deps, ownerOf(c), c.req.param('id') ?? '');
  mount(
    app,
    ViewRoute,
    async (c) => {
      const { id, owner, ref } = await jobParam(c, deps);
      const view = await jobs.view(owner, ref, id);
      const waitS = askedWaitS(c.req.query('wait'), headerOf(c, 'prefer'), config.MAX_WAIT_S);
      if (waitS > 0 && (view.status === 'queued' || view.status === 'active')) {
        // The answer is 200 whatever the wait brings: the handler returns now and the view is
        // written when the job ends or the wait runs out (see deferredJson).
        const fresh = () => jobs.view(owner, ref, id);
        const later = (departure: Departure): Promise<z.infer<typeof JobViewSchema>> =>
          jobs
            .waitFor(ref, waitS * 1000, departure)
            .then((outcome) => jobs.settled(view, ref, outcome) ?? fresh(), fresh)
            .catch(() => view);
        return deferredJson(c, later, {
          closing: () => deps.isShuttingDown(),
          onError: (err) => deps.logger.error({ err, jobId: ref.jobId }, 'long-poll answer failed'),
        });
      }
      return c.json(view satisfies z.infer<typeof JobViewSchema>);
    },
    { exists },
  );

  mount(
    app,
    CancelRoute,
    async (c) => {
      const { id, owner, ref } = await jobParam(c, deps);
      await jobs.cancel(owner, ref, id);
      return c.body(null, 204);
    },
    { exists },
  );

  return app;
}
