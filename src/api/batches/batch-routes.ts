import { Hono, type Context } from 'hono';
import { stream, streamSSE } from 'hono/streaming';
import {
  BATCH_DEFAULT_PRIORITY,
  BatchQuerySchema,
  BatchRequestSchema,
} from '../../shared/batches.js';
import { ApiError } from '../../shared/errors.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import { parseOrThrow } from '../../shared/schemas.js';
import type { ChunkStager } from './batch-upload.js';
import { stageItems, stageNdjson } from './batch-upload.js';
import { assertAccepting, type ApiDeps, type AppEnv } from '../deps.js';
import { readJson } from '../http/request-body.js';
import { ownerOf } from '../http/owner.js';
import { askedWaitS } from '../http/prefer.js';

const BATCH_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl']);

// SSE comment line sent when nothing changed for this long, so proxies keep the stream open.
const KEEP_ALIVE_MS = 15_000;
// Fewest milliseconds between two progress events of one stream.
const PROGRESS_EVERY_MS = 100;

/** Whether a request is an NDJSON batch upload, which MAX_BODY_BYTES does not bound. */
export function isNdjsonBatchUpload(c: Context): boolean {
  // Runs for every request: the cheap checks first, the header (a Headers lookup) last.
  if (c.req.method !== 'POST' || !/^\/v1\/batches\/?$/.test(c.req.path)) return false;
  const type = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
  return NDJSON_TYPES.has(type);
}

function batchIdParam(c: Context<AppEnv>): string {
  const id = c.req.param('id') ?? '';
  if (!BATCH_ID_RE.test(id))
    throw new ApiError('batch_not_found', `Batch "${id.slice(0, 64)}" does not exist.`);
  return id;
}

function requireTabular(model: ModelVersion): void {
  if (model.rowSize < 0) {
    throw new ApiError(
      'validation_error',
      'This model takes tensors with free dimensions; use POST /v2/models/{model}/infer.',
    );
  }
}

async function stageOrDiscard(stager: ChunkStager, stage: () => Promise<void>): Promise<void> {
  try {
    await stage();
    if (stager.total === 0) {
      throw new ApiError('validation_error', 'The batch holds no items.', [
        { message: 'send at least one item' },
      ]);
    }
  } catch (err) {
    await stager.discard().catch(() => undefined);
    throw err;
  }
}

/** A staged upload, ready to be enqueued. */
interface Upload {
  model: ModelVersion;
  stager: ChunkStager;
  priority?: number;
}

function askedWait(c: Context<AppEnv>, maxS: number): number {
  return askedWaitS(c.req.query('wait'), c.req.header('prefer'), maxS);
}

/** POST /v1/batches and the per-batch status, results, events and cancel routes. */
export function batchRoutes(deps: ApiDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const { config, repository, batches, depth, logger } = deps;

  /** Reads and stages an NDJSON upload (model and priority in the query). */
  async function stageNdjsonUpload(c: Context<AppEnv>): Promise<Upload> {
    const query = parseOrThrow(BatchQuerySchema, {
      model: c.req.query('model'),
      version: c.req.query('version') ?? c.req.header('x-model-version'),
      priority: c.req.query('priority'),
    });
    const model = repository.resolve(query.model, query.version);
    requireTabular(model);
    const stager = batches.stager(model, ownerOf(c), query.priority);
    const body = c.req.raw.body ?? new Blob([]).stream();
    const limits = {
      maxLineBytes: config.MAX_LINE_BYTES,
      maxRows: config.MAX_BATCH_ROWS,
      maxBytes: config.MAX_BATCH_BYTES,
    };
    await stageOrDiscard(stager, () => stageNdjson(body, stager, limits));
    return { model, stager, priority: query.priority };
  }

  /** Reads and stages a JSON body of items. */
  async function stageJsonUpload(c: Context<AppEnv>): Promise<Upload> {
    const body = parseOrThrow(BatchRequestSchema, await readJson(c));
    const model = repository.resolve(body.model, body.version);
    requireTabular(model);
    const stager = batches.stager(model, ownerOf(c), body.priority);
    await stageOrDiscard(stager, () => stageItems(body.items, stager));
    return { model, stager, priority: body.priority };
  }

  app.post('/v1/batches', async (c) => {
    assertAccepting(deps);
    depth.check();
    const { model, stager, priority } = isNdjsonBatchUpload(c)
      ? await stageNdjsonUpload(c)
      : await stageJsonUpload(c);
    try {
      await batches.create(ownerOf(c), model, stager, priority ?? BATCH_DEFAULT_PRIORITY);
    } catch (err) {
      await stager.discard().catch(() => undefined);
      throw err;
    }
    const id = stager.options.batchId;
    const self = `/v1/batches/${id}`;
    c.header('Location', self);
    return c.json(
      { id, status: 'queued', total: stager.total, links: { self, results: `${self}/results` } },
      202,
    );
  });

  app.get('/v1/batches/:id', async (c) => {
    const id = batchIdParam(c);
    const waitS = askedWait(c, config.MAX_WAIT_S);
    const owner = ownerOf(c);
    return c.json(
      waitS > 0 ? await batches.waitForEnd(owner, id, waitS * 1000) : await batches.view(owner, id),
    );
  });

  app.get('/v1/batches/:id/results', async (c) => {
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
  });

  app.get('/v1/batches/:id/events', async (c) => {
    const id = batchIdParam(c);
    const owner = ownerOf(c);
    await batches.view(owner, id);
    return streamSSE(
      c,
      async (s) => {
        const watch = batches.watch(id);
        s.onAbort(() => watch.close());
        try {
          let last = '';
          let lastWrite = Date.now();
          while (!s.aborted && !batches.isClosed) {
            const view = await batches.view(owner, id);
            const data = JSON.stringify(view);
            if (data !== last) {
              await s.writeSSE({ event: 'progress', data });
              [last, lastWrite] = [data, Date.now()];
            } else if (Date.now() - lastWrite >= KEEP_ALIVE_MS) {
              await s.write(': keep-alive\n\n');
              lastWrite = Date.now();
            }
            if (view.finishedAt !== undefined) {
              await s.writeSSE({ event: 'done', data });
              return;
            }
            await s.sleep(PROGRESS_EVERY_MS);
            // Events are best-effort: look again every 2 s even without one.
            await watch.next(2000);
          }
        } finally {
          watch.close();
        }
      },
      (err) => {
        logger.warn({ err, batchId: id }, 'batch events stream failed');
        return Promise.resolve();
      },
    );
  });

  app.delete('/v1/batches/:id', async (c) => {
    await batches.cancel(ownerOf(c), batchIdParam(c));
    return c.body(null, 204);
  });

  return app;
}
