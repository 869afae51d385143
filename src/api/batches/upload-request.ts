import type { Context } from 'hono';
import { BatchQuerySchema, BatchRequestSchema } from '../../shared/batches.js';
import { ApiError } from '../../shared/errors.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import { parseOrThrow } from '../../shared/schemas.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { ownerOf } from '../http/owner.js';
import { headerOf, requestBytes } from '../http/node-request.js';
import { readJson } from '../http/request-body.js';
import { stageItems, stageNdjson, type ChunkStager } from './batch-upload.js';

// POST /v1/batches bodies: reading and staging a JSON list or a streamed NDJSON upload.

const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/jsonl']);

/** Whether a request is an NDJSON batch upload, which MAX_BODY_BYTES does not bound. */
export function isNdjsonBatchUpload(c: Context): boolean {
  // Runs for every POST, PUT and PATCH: the cheap checks first, the header last.
  if (c.req.method !== 'POST' || !/^\/v1\/batches\/?$/.test(c.req.path)) return false;
  const type = headerOf(c, 'content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
  return NDJSON_TYPES.has(type);
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
export interface Upload {
  model: ModelVersion;
  stager: ChunkStager;
  priority?: number;
}

/** Reads and stages an NDJSON upload (model and priority in the query). */
async function stageNdjsonUpload(c: Context<AppEnv>, deps: ApiDeps): Promise<Upload> {
  const { config, repository, batches } = deps;
  const query = parseOrThrow(BatchQuerySchema, {
    model: c.req.query('model'),
    version: c.req.query('version') ?? c.req.header('x-model-version'),
    priority: c.req.query('priority'),
  });
  const model = repository.resolve(query.model, query.version);
  requireTabular(model);
  const stager = batches.stager(model, ownerOf(c), query.priority);
  const body = requestBytes(c);
  const limits = {
    maxLineBytes: config.MAX_LINE_BYTES,
    maxRows: config.MAX_BATCH_ROWS,
    maxBytes: config.MAX_BATCH_BYTES,
  };
  await stageOrDiscard(stager, () => stageNdjson(body, stager, limits));
  return { model, stager, priority: query.priority };
}

/** Reads and stages a JSON body of items. */
async function stageJsonUpload(c: Context<AppEnv>, deps: ApiDeps): Promise<Upload> {
  const { repository, batches } = deps;
  const body = parseOrThrow(BatchRequestSchema, await readJson(c));
  const model = repository.resolve(body.model, body.version);
  requireTabular(model);
  const stager = batches.stager(model, ownerOf(c), body.priority);
  await stageOrDiscard(stager, () => stageItems(body.items, stager));
  return { model, stager, priority: body.priority };
}

/** Reads and stages the body of POST /v1/batches, NDJSON or JSON by its content type. */
export function stageUpload(c: Context<AppEnv>, deps: ApiDeps): Promise<Upload> {
  return isNdjsonBatchUpload(c) ? stageNdjsonUpload(c, deps) : stageJsonUpload(c, deps);
}
