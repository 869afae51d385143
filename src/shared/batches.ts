import { z } from 'zod';
import type { ErrorDetail } from './errors.js';
import type { BatchView } from './public-types.js';
import { FeatureSchema, ModelNameSchema, VersionSchema } from './schemas.js';
import { FLOAT32_MAX } from './public-types.js';

/** BullMQ job name of one chunk of a batch (on the same queue as online predictions). */
export const BATCH_CHUNK_JOB = 'batch-chunk';

/** Most items of a JSON (not NDJSON) batch body. */
export const MAX_JSON_BATCH_ITEMS = 10_000;

/** BullMQ priority of batch chunks when the client asks none: behind online jobs, which have none. */
export const BATCH_DEFAULT_PRIORITY = 5;

/** Longest accepted item id, characters. */
export const MAX_ITEM_ID_LENGTH = 256;

/** BullMQ priority a client may ask for a batch: 1 (highest) .. 10. */
export const BatchPrioritySchema = z.number().int().min(1).max(10);

/** Body of a JSON POST /v1/batches; each item is checked against the model by checkItem. */
export const BatchRequestSchema = z.object({
  model: ModelNameSchema,
  version: VersionSchema.optional(),
  priority: BatchPrioritySchema.optional(),
  items: z
    .array(z.unknown())
    .min(1, 'must hold at least one item')
    .max(MAX_JSON_BATCH_ITEMS, `at most ${MAX_JSON_BATCH_ITEMS} items; send more as NDJSON`),
});
export type BatchRequest = z.infer<typeof BatchRequestSchema>;

/** Query of an NDJSON POST /v1/batches. */
export const BatchQuerySchema = z.object({
  model: ModelNameSchema,
  version: VersionSchema.optional(),
  priority: z.coerce.number().pipe(BatchPrioritySchema).optional(),
});
export type BatchQuery = z.infer<typeof BatchQuerySchema>;

export type { BatchStatus, BatchView } from './public-types.js';

/** The stored record of a batch: its view plus how it is cut into chunks. */
export interface BatchRecord extends BatchView {
  chunks: number;
  chunkRows: number;
}

/** Payload of one batch-chunk job: the rows themselves are staged in Redis, not in the job. */
export interface BatchChunkJobData {
  batchId: string;
  /** Chunk number, from 0. */
  chunk: number;
  /** Index of the chunk's first item in the batch. */
  firstIndex: number;
  /** Rows of the chunk (absent in jobs queued before uploads streamed: read from the record). */
  rows?: number;
  model: string;
  version: string;
  /** Result-cache scope of the batch's owner (see CACHE_SCOPE); rows are looked up there. */
  cacheScope?: string;
}

/** What a batch-chunk job returns. */
export interface BatchChunkResult {
  batchId: string;
  chunk: number;
  rows: number;
  /** Whether this chunk was the last one the batch waited for. */
  finished: boolean;
  /** Milliseconds the job waited in the queue before a worker took it. */
  queueMs: number;
}

/** One line of GET /v1/batches/{id}/results (the contract of src/shared/contracts/batches.ts). */
export type { BatchResultLine } from './contracts/batches.js';

/** BullMQ job id of a batch chunk (custom ids must not contain ':'). */
export function chunkJobId(batchId: string, chunk: number): string {
  return `b-${batchId}-${chunk}`;
}

const CHUNK_JOB_RE = /^b-([0-9a-f-]{36})-(\d+)$/;

/** The batch id and chunk of a chunk job id, or undefined for another job. */
export function parseChunkJobId(jobId: string): { batchId: string; chunk: number } | undefined {
  const m = CHUNK_JOB_RE.exec(jobId);
  return m?.[1] && m[2] ? { batchId: m[1], chunk: Number(m[2]) } : undefined;
}

/** Rows held by chunk `n` of a batch of `total` rows cut into chunks of `chunkRows`. */
export function rowsOfChunk(total: number, chunkRows: number, n: number): number {
  return Math.max(0, Math.min(chunkRows, total - n * chunkRows));
}

/** Rows of one chunk as the API stages them in Redis for a worker. */
export interface StagedChunk {
  rows: number;
  rowSize: number;
  /**
   * Client ids by row, null where an item had none (empty when no item had one); or the ids
   * section already encoded: each row's id as its JSON text ('' for none), joined by newlines.
   */
  ids: (string | null)[] | Uint8Array;
  /** rows * rowSize float32 values, row-major. */
  values: Float32Array;
}

/** A staged chunk as a worker reads it. */
export interface DecodedChunk {
  rows: number;
  rowSize: number;
  /**
   * The JSON text of each row's client id (`"row-1"`), '' where an item had none; empty when no
   * item had one. Result lines take it as it is: no id is parsed or serialised again.
   */
  idTexts: string[];
  /** rows * rowSize float32 values, row-major. */
  values: Float32Array;
}

/**
 * Encodes a staged chunk as [u32 header length][JSON header][ids][padding to 4][float32 values].
 * The ids are their JSON texts joined by newlines (a JSON text holds none), `idBytes` long: read
 * back by one split, not by JSON.parse, which made a string-table entry of each of a million ids
 * (the worker's largest cost after the cache lookup in the issue-14 profile). The values travel
 * as raw float32 bytes (platform order, little-endian everywhere inferq runs), about a quarter of
 * their JSON size, and hash to the same cache key as an online request.
 */
export function encodeChunk(chunk: StagedChunk): Buffer {
  const ids = Array.isArray(chunk.ids)
    ? Buffer.from(chunk.ids.map((id) => (id === null ? '' : JSON.stringify(id))).join('\n'))
    : chunk.ids;
  const header = Buffer.from(
    JSON.stringify({ rows: chunk.rows, rowSize: chunk.rowSize, idBytes: ids.length }),
  );
  const offset = Math.ceil((4 + header.length + ids.length) / 4) * 4;
  const byteLength = chunk.rows * chunk.rowSize * 4;
  const out = Buffer.alloc(offset + byteLength);
  out.writeUInt32LE(header.length, 0);
  header.copy(out, 4);
  out.set(ids, 4 + header.length);
  const bytes = new Uint8Array(chunk.values.buffer, chunk.values.byteOffset, byteLength);
  out.set(bytes, offset);
  return out;
}

/** Decodes what encodeChunk wrote (or its earlier form, ids in the header); throws when malformed. */
export function decodeChunk(buf: Buffer): DecodedChunk {
  const headerLength = buf.readUInt32LE(0);
  const header = JSON.parse(buf.subarray(4, 4 + headerLength).toString('utf8')) as {
    rows: number;
    rowSize: number;
    idBytes?: number;
    /** Chunks staged before idBytes: the ids themselves. */
    ids?: (string | null)[];
  };
  const idBytes = header.idBytes ?? 0;
  const idsAt = 4 + headerLength;
  const idTexts = header.ids
    ? header.ids.map((id) => (id === null ? '' : JSON.stringify(id)))
    : idBytes > 0
      ? buf.toString('utf8', idsAt, idsAt + idBytes).split('\n')
      : [];
  if (idTexts.length > 0 && idTexts.length !== header.rows)
    throw new Error('staged chunk has the wrong number of ids');
  const offset = Math.ceil((idsAt + idBytes) / 4) * 4;
  const count = header.rows * header.rowSize;
  if (buf.length !== offset + count * 4) throw new Error('staged chunk has the wrong length');
  // A view where the bytes are 4-byte aligned (a Buffer of its own, as a large reply is); else a
  // copy (a Buffer may sit at an unaligned offset of a shared pool).
  const at = buf.byteOffset + offset;
  let values: Float32Array;
  if (at % 4 === 0) {
    values = new Float32Array(buf.buffer, at, count);
  } else {
    values = new Float32Array(count);
    new Uint8Array(values.buffer).set(buf.subarray(offset));
  }
  return { rows: header.rows, rowSize: header.rowSize, idTexts, values };
}

/** The outcome of checking one batch item. */
export type ItemCheck = { ok: true; id?: string } | { ok: false; detail: ErrorDetail };

function featureMessage(value: unknown): string {
  const parsed = FeatureSchema.safeParse(value);
  return parsed.success ? 'must be a number' : (parsed.error.issues[0]?.message ?? 'is invalid');
}

/**
 * Checks one `{"id"?, "features"}` item against the model's row width and writes its values
 * as float32 into `target` at `offset`. Cheap on the happy path (one pass, no allocation); the
 * zod FeatureSchema names what is wrong with a bad value.
 */
export function checkItem(
  raw: unknown,
  rowSize: number,
  target: Float32Array,
  offset: number,
): ItemCheck {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, detail: { message: 'must be an object {"id"?, "features": [...]}' } };
  }
  const { id, features } = raw as { id?: unknown; features?: unknown };
  if (id !== undefined && (typeof id !== 'string' || id.length > MAX_ITEM_ID_LENGTH)) {
    const message = `must be a string of at most ${MAX_ITEM_ID_LENGTH} characters`;
    return { ok: false, detail: { path: 'id', message } };
  }
  if (!Array.isArray(features)) {
    return { ok: false, detail: { path: 'features', message: 'must be an array of numbers' } };
  }
  if (features.length !== rowSize) {
    const message = `expected ${rowSize} features, got ${features.length}`;
    return { ok: false, detail: { path: 'features', message } };
  }
  for (let i = 0; i < rowSize; i++) {
    const v: unknown = features[i];
    if (typeof v !== 'number' || !(Math.abs(v) <= FLOAT32_MAX)) {
      return { ok: false, detail: { path: `features[${i}]`, message: featureMessage(v) } };
    }
    target[offset + i] = v;
  }
  return id === undefined ? { ok: true } : { ok: true, id };
}

/** NDJSON result lines of `rows` cancelled items from `index` (`idTexts` as in DecodedChunk). */
export function cancelledLines(index: number, rows: number, idTexts: string[]): string {
  let text = '';
  for (let i = 0; i < rows; i++) {
    const id = idTexts[i];
    text += id
      ? `{"index":${index + i},"id":${id},"status":"cancelled"}\n`
      : `{"index":${index + i},"status":"cancelled"}\n`;
  }
  return text;
}
