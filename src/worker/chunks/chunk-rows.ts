import type { JobFailure } from '../../shared/errors.js';
import * as crypto from 'node:crypto';
import { isCacheEntry, type InstanceResult, type PredictJobResult } from '../../shared/jobs.js';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { LoadedModel } from '../inference/model-pool.js';
import { ModelOutputError, toInstanceResults } from '../inference/output-shaping.js';
import { mgetAcrossSlots } from '../../shared/slots.js';
import type { ThreadTensor } from '../inference/thread-protocol.js';
import { classificationMembers } from './result-lines.js';

/**
 * How one row of a batch ended: a result (or its JSON members, already written by the fast
 * classification path), or an error.
 */
export type RowOutcome =
  { result: InstanceResult; cached?: true } | { members: string } | { error: JobFailure };

/** The values of row `i` of a row-major block. */
export function rowOf(values: Float32Array, rowSize: number, i: number): Float32Array {
  return values.subarray(i * rowSize, (i + 1) * rowSize);
}

/**
 * Rows a chunk works on between two turns of the event loop: BullMQ renews job locks on this
 * loop, so no step may hold it long, whatever BATCH_CHUNK_ROWS is (the default chunk is one step).
 */
export const ROWS_PER_STEP = 2000;

/** Lets timers and I/O (lock renewal among them) run before the next step of a long loop. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function cachedOutcome(hit: string | null): RowOutcome | undefined {
  // An online request's claim may stand in the key while its part runs: no result yet.
  if (!isCacheEntry(hit)) return undefined;
  try {
    const result = (JSON.parse(hit) as PredictJobResult).results[0];
    return result ? { result, cached: true } : undefined;
  } catch {
    return undefined;
  }
}

// crypto.hash (one-shot) came with Node 20.12; package.json allows 20.6.
const sha256Hex: (data: Buffer) => string =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');

/**
 * inputHash of each one-row input `start..end-1` (the online cache key of that row), with one
 * one-shot SHA-256 per row over a reused buffer: 2.5x createHash + update + digest here.
 */
export function rowHashes(
  model: LoadedModel['model'],
  values: Float32Array,
  start: number,
  end: number,
): string[] {
  // The same bytes inputHash feeds its hash: the header text, then the row's float32 bytes.
  const head = Buffer.from(`${model.name}\0${model.version}\0${1}\0`);
  const rowBytes = model.rowSize * 4;
  const scratch = Buffer.alloc(head.length + rowBytes);
  head.copy(scratch);
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const hashes = new Array<string>(end - start);
  for (let i = start; i < end; i++) {
    scratch.set(bytes.subarray(i * rowBytes, (i + 1) * rowBytes), head.length);
    hashes[i - start] = sha256Hex(scratch);
  }
  return hashes;
}

/**
 * Looks rows `from..to-1` up in the result cache, ROWS_PER_STEP rows per turn of the event loop;
 * the outcomes of those that hit are written into `outcomes`, and the number of hits returned.
 * The keys are those of a one-row online request for the same model, version and values, so
 * batch rows reuse online results.
 */
export async function lookupCache(
  redis: RedisClient,
  keys: Keys,
  scope: string,
  model: LoadedModel['model'],
  values: Float32Array,
  rows: { from: number; to: number },
  outcomes: (RowOutcome | undefined)[],
): Promise<number> {
  let hits = 0;
  for (let start = rows.from; start < rows.to; start += ROWS_PER_STEP) {
    if (start > rows.from) await nextTurn();
    const end = Math.min(rows.to, start + ROWS_PER_STEP);
    const names = rowHashes(model, values, start, end).map((digest) => keys.cache(scope, digest));
    // Rows' cache keys spread over a Cluster's slots (QUEUE_SHARDS > 1): one MGET per slot.
    const found = await mgetAcrossSlots(redis, names);
    found.forEach((hit, i) => {
      const outcome = cachedOutcome(hit);
      if (!outcome) return;
      outcomes[start + i] = outcome;
      hits++;
    });
  }
  return hits;
}

function rowOutputs(
  outputs: Record<string, ThreadTensor>,
  rows: number,
  i: number,
): Record<string, ThreadTensor> {
  const out: Record<string, ThreadTensor> = {};
  for (const [name, t] of Object.entries(outputs)) {
    const per = t.data.length / rows;
    const data = t.data.slice(i * per, (i + 1) * per) as ThreadTensor['data'];
    out[name] = { type: t.type, data, dims: [1, ...t.dims.slice(1)] };
  }
  return out;
}

function outputFailure(err: ModelOutputError): RowOutcome {
  const message = `The model produced invalid output: ${err.message}.`;
  return { error: { code: 'model_output_invalid', message } };
}

// Shapes outputs row by row, so a non-finite output fails its own row only.
function shapeEach(loaded: LoadedModel, outputs: Record<string, ThreadTensor>, rows: number) {
  return Array.from({ length: rows }, (_, i): RowOutcome => {
    try {
      const [result] = toInstanceResults(loaded.model, rowOutputs(outputs, rows, i), 1, 'task');
      return result ? { result } : { error: { code: 'inference_failed', message: 'no output' } };
    } catch (err) {
      if (err instanceof ModelOutputError) return outputFailure(err);
      throw err;
    }
  });
}

/**
 * Runs `rows` rows through the model's micro-batcher. When the run fails the rows are run one
 * by one, so a failing input fails alone with inference_failed.
 */
async function runSlice(
  loaded: LoadedModel,
  rows: number,
  values: Float32Array,
): Promise<RowOutcome[]> {
  const rowSize = loaded.model.rowSize;
  let outputs: Record<string, ThreadTensor>;
  try {
    outputs = (await loaded.batcher.submit(rows, values)).outputs;
  } catch (err) {
    if (rows === 1) {
      const message = `Inference failed: ${(err as Error).message}`;
      return [{ error: { code: 'inference_failed', message } }];
    }
    const each = Array.from({ length: rows }, (_, i) =>
      runSlice(loaded, 1, rowOf(values, rowSize, i)),
    );
    return (await Promise.all(each)).flat();
  }
  const members = classificationMembers(loaded.model, outputs, rows);
  if (members) return members.map((m) => ({ members: m }));
  try {
    return toInstanceResults(loaded.model, outputs, rows, 'task').map((result) => ({ result }));
  } catch (err) {
    if (err instanceof ModelOutputError) return shapeEach(loaded, outputs, rows);
    throw err;
  }
}

/**
 * Infers the given rows in slices of at most `maxBatchSize`, all submitted at once so that
 * they run back to back; results come back in the order of `values`.
 */
export async function inferRows(
  loaded: LoadedModel,
  maxBatchSize: number,
  values: Float32Array,
  rows: number,
): Promise<RowOutcome[]> {
  const rowSize = loaded.model.rowSize;
  const slices: Promise<RowOutcome[]>[] = [];
  let submitted = 0;
  for (let start = 0; start < rows; start += maxBatchSize) {
    if (start - submitted >= ROWS_PER_STEP) {
      submitted = start;
      await nextTurn();
    }
    const n = Math.min(maxBatchSize, rows - start);
    slices.push(runSlice(loaded, n, values.subarray(start * rowSize, (start + n) * rowSize)));
  }
  return (await Promise.all(slices)).flat();
}

/**
 * One NDJSON result line of the item at `index`, whose client id is `idText` as JSON text (''
 * or undefined: none); built as text, this runs once per row.
 */
export function resultLine(index: number, idText: string | undefined, outcome: RowOutcome): string {
  const head = idText ? `{"index":${index},"id":${idText}` : `{"index":${index}`;
  if ('error' in outcome) {
    return `${head},"status":"failed","error":${JSON.stringify(outcome.error)}}`;
  }
  if ('members' in outcome) return `${head},"status":"completed",${outcome.members}}`;
  const body = JSON.stringify(outcome.result);
  const cached = outcome.cached ? ',"cached":true' : '';
  // body is a non-empty object: its fields follow ours after its opening brace.
  return `${head},"status":"completed"${cached}${body === '{}' ? '}' : `,${body.slice(1)}`}`;
}
