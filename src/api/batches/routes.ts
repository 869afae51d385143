import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { stream } from 'hono/streaming';
import { z } from 'zod';
import {
  BATCH_DEFAULT_PRIORITY,
  BatchQuerySchema,
  BatchRequestSchema,
  MAX_JSON_BATCH_ITEMS,
} from '../../shared/batches.js';
import {
  BatchAcceptedSchema,
  BatchEventSchema,
  BatchItemSchema,
  BatchResultLineSchema,
  BatchViewSchema,
} from '../../shared/contracts/batches.js';
import {
  PreferHeaderSchema,
  PUBLIC_ID_RE,
  WaitQuerySchema,
} from '../../shared/contracts/common.js';
import { ApiError } from '../../shared/errors.js';
import { assertAccepting, type ApiDeps, type AppEnv } from '../deps.js';
import { ownerOf } from '../http/owner.js';
import { askedWaitS } from '../http/prefer.js';
import {
  API_KEY_SECURITY,
  BatchIdPath,
  COMMON_V1,
  errors,
  SUBMIT_ERRORS,
  json,
  VersionHeader,
} from '../openapi/common.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';
import { progressEvents } from './progress-events.js';
import { stageUpload } from './upload-request.js';

// Items are checked one by one against the model (checkItem); this is their documented shape.
const BatchBodySchema = BatchRequestSchema.extend({
  items: z.array(BatchItemSchema).min(1).max(MAX_JSON_BATCH_ITEMS),
}).meta({ id: 'BatchRequest' });

const SubmitRoute = createRoute({
  method: 'post',
  path: '/v1/batches',
  tags: ['batches'],
  summary:
    'Submit a batch: JSON (up to 10,000 items) or NDJSON (streamed, up to MAX_BATCH_ROWS lines).',
  description:
    'NDJSON uploads name the model in the query (`?model=&version=&priority=`, or the version ' +
    'in `X-Model-Version`); a line that fails validation rejects the batch with 422 naming it ' +
    'in `details[].line`. JSON uploads name the model in the body.',
  security: API_KEY_SECURITY,
  request: {
    query: BatchQuerySchema.partial().extend({
      // Coerced from the query string; documented as what it must be.
      priority: BatchQuerySchema.shape.priority.meta({ type: 'integer', minimum: 1, maximum: 10 }),
    }),
    headers: VersionHeader,
    body: {
      required: true,
      content: {
        'application/json': { schema: BatchBodySchema },
        'application/x-ndjson': {
          schema: BatchItemSchema,
          description: 'One item per line (also `application/ndjson`, `application/jsonl`).',
        },
      },
    },
  },
  responses: {
    202: {
      description: 'Queued.',
      headers: z.object({ Location: z.string() }),
      content: json(BatchAcceptedSchema),
    },
    ...errors(...SUBMIT_ERRORS, ...COMMON_V1),
  },
});

const ViewRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}',
  tags: ['batches'],
  summary: 'Progress of a batch; long-polls with `Prefer: wait=N` or `?wait=N`.',
  security: API_KEY_SECURITY,
  request: { params: BatchIdPath, query: WaitQuerySchema, headers: PreferHeaderSchema },
  responses: {
    200: { description: 'The batch.', content: json(BatchViewSchema) },
    ...errors('batch_not_found', 'validation_error', ...COMMON_V1),
  },
});

const CancelRoute = createRoute({
  method: 'delete',
  path: '/v1/batches/{id}',
  tags: ['batches'],
  summary: 'Cancel the rows of a batch that have not started.',
  security: API_KEY_SECURITY,
  request: { params: BatchIdPath },
  responses: {
    204: { description: 'Cancelled.' },
    ...errors('batch_not_found', ...COMMON_V1),
  },
});

const ResultsRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}/results',
  tags: ['batches'],
  summary: 'NDJSON results in submission order; streams while the batch runs.',
  security: API_KEY_SECURITY,
  request: { params: BatchIdPath },
  responses: {
    200: {
      description: 'One line per item; the schema is that of one line.',
      content: { 'application/x-ndjson': { schema: BatchResultLineSchema } },
    },
    ...errors('batch_not_found', ...COMMON_V1),
  },
});

const EventsRoute = createRoute({
  method: 'get',
  path: '/v1/batches/{id}/events',
  tags: ['batches'],
  summary: 'Server-Sent Events: `progress` events with the batch view, then `done`.',
  security: API_KEY_SECURITY,
  request: { params: BatchIdPath },
  responses: {
    200: {
      description:
        'An event stream. The schema is that of one event, its `data` parsed as JSON; ' +
        '`:` comments keep it alive.',
      content: { 'text/event-stream': { schema: BatchEventSchema } },
    },
    ...errors('batch_not_found', ...COMMON_V1),
  },
});

function batchIdParam(c: Context<AppEnv>): string {
  const id = c.req.param('id') ?? '';
  if (!PUBLIC_ID_RE.test(id))
    throw new ApiError('batch_not_found', `Batch "${id.slice(0, 64)}" does not exist.`);
  return id;
}

function askedWait(c: Context<AppEnv>, maxS: number): number {
  return askedWaitS(c.req.query('wait'), c.req.header('prefer'), maxS);
}

/** POST /v1/batches and the per-batch status, results, events and cancel routes. */
export function batchRoutes(deps: ApiDeps): RouteApp {
  const app = routeApp();
  const { config, batches, depth, logger } = deps;

  mount(app, SubmitRoute, async (c) => {
    assertAccepting(deps, c.req.raw);
    depth.check();
    const { model, stager, priority } = await stageUpload(c, deps);
    try {
      await batches.create(ownerOf(c), model, stager, priority ?? BATCH_DEFAULT_PRIORITY);
    } catch (err) {
      await stager.discard().catch(() => undefined);
      throw err;
    }
    const id = stager.options.batchId;
    const self = `/v1/batches/${id}`;
    c.header('Location', self);
    const body: z.infer<typeof BatchAcceptedSchema> = {
      id,
      status: 'queued',
      total: stager.total,
      links: { self, results: `${self}/results` },
    };
    return c.json(body, 202);
  });

  // An id of the wrong form names no batch: 404, as an unknown one.
  const exists = (c: Context<AppEnv>) => batchIdParam(c);

  mount(
    app,
    ViewRoute,
    async (c) => {
      const id = batchIdParam(c);
      const waitS = askedWait(c, config.MAX_WAIT_S);
      const owner = ownerOf(c);
      const view =
        waitS > 0
          ? await batches.waitForEnd(owner, id, waitS * 1000)
          : await batches.view(owner, id);
      return c.json(view satisfies z.infer<typeof BatchViewSchema>);
    },
    { exists },
  );

  mount(
    app,
    ResultsRoute,
    async (c) => {
      const batch = await batches.record(ownerOf(c), batchIdParam(c));
      c.header('Content-Type', 'application/x-ndjson');
      return stream(
        c,
        async (s) => {
          for await (const text of batches.results(batch, () => s.aborted)) await s.write(text);
        },
        (err) => {
          logger.warn({ err, batchId: batch.id }, 'batch results stream failed');
          return Promise.resolve();
        },
      );
    },
    { exists },
  );

  mount(
    app,
    EventsRoute,
    async (c) => {
      const id = batchIdParam(c);
      const owner = ownerOf(c);
      await batches.view(owner, id);
      return progressEvents(c, deps, owner, id);
    },
    { exists },
  );

  mount(
    app,
    CancelRoute,
    async (c) => {
      await batches.cancel(ownerOf(c), batchIdParam(c));
      return c.body(null, 204);
    },
    { exists },
  );

  return app;
}
