import type { RedisClient } from '../shared/redis.js';
import { checkItem, encodeChunk } from '../shared/batches.js';
import { ApiError, type ErrorDetail } from '../shared/errors.js';
import type { Keys } from '../shared/keys.js';

/** Where a batch's rows are staged while they are read. */
export interface StagerOptions {
  redis: RedisClient;
  keys: Keys;
  batchId: string;
  /** Values per row (the model's input width). */
  rowSize: number;
  /** Rows per chunk (BATCH_CHUNK_ROWS). */
  chunkRows: number;
  /** Lifetime of the staged keys, seconds. */
  ttlS: number;
}

// Chunk writes in flight at once: enough to overlap parsing with Redis, few enough to bound memory.
const MAX_INFLIGHT_WRITES = 4;

/**
 * Collects validated rows into chunks and writes each full chunk to Redis as one key while the
 * upload is still being read, so the API holds at most a few chunks of a batch in memory.
 */
export class ChunkStager {
  /** Rows accepted so far. */
  total = 0;
  /** Chunks written (or being written) so far. */
  chunks = 0;
  private values: Float32Array;
  private ids: (string | null)[] = [];
  private anyId = false;
  private rows = 0;
  private inflight: Promise<void>[] = [];
  private failure: Error | undefined;

  constructor(readonly options: StagerOptions) {
    this.values = new Float32Array(options.chunkRows * options.rowSize);
  }

  /**
   * Checks `raw` as the next item and stages it; returns what is wrong with it, if anything.
   * A full chunk starts its write at once; call `drain` now and then to bound the writes in flight.
   */
  add(raw: unknown): ErrorDetail | undefined {
    const { rowSize, chunkRows } = this.options;
    const checked = checkItem(raw, rowSize, this.values, this.rows * rowSize);
    if (!checked.ok) return checked.detail;
    this.ids.push(checked.id ?? null);
    if (checked.id !== undefined) this.anyId = true;
    this.rows++;
    this.total++;
    if (this.rows === chunkRows) this.flush();
    return undefined;
  }

  /** Waits until few enough chunk writes are in flight; rethrows a failed write. */
  async drain(): Promise<void> {
    while (this.inflight.length >= MAX_INFLIGHT_WRITES) await this.inflight.shift();
    if (this.failure) throw this.failure;
  }

  /** Writes the last partial chunk and waits for every write. */
  async finish(): Promise<void> {
    if (this.rows > 0) this.flush();
    await Promise.all(this.inflight);
    this.inflight = [];
    if (this.failure) throw this.failure;
  }

  /** Deletes every staged chunk (after a bad line, nothing of the batch may remain). */
  async discard(): Promise<void> {
    await Promise.all(this.inflight);
    const { redis, keys, batchId } = this.options;
    for (let start = 0; start < this.chunks; start += 500) {
      const end = Math.min(this.chunks, start + 500);
      const names = Array.from({ length: end - start }, (_, i) =>
        keys.batchInput(batchId, start + i),
      );
      await redis.del(...names);
    }
  }

  private flush(): void {
    const { redis, keys, batchId, rowSize, ttlS } = this.options;
    const buf = encodeChunk({
      rows: this.rows,
      rowSize,
      ids: this.anyId ? this.ids : [],
      values: this.values.subarray(0, this.rows * rowSize),
    });
    const key = keys.batchInput(batchId, this.chunks++);
    // Errors are kept and rethrown by drain or finish: no rejection goes unhandled.
    this.inflight.push(
      redis.set(key, buf, 'EX', ttlS).then(
        () => undefined,
        (err: unknown) =>
          void (this.failure ??= err instanceof Error ? err : new Error(String(err))),
      ),
    );
    this.rows = 0;
    this.ids = [];
    this.anyId = false;
  }
}

/** One line of an NDJSON upload: its 1-based number and text. */
export interface NdjsonLine {
  line: number;
  text: string;
}

function tooLong(line: number, maxLineBytes: number): ApiError {
  const message = `line is longer than ${maxLineBytes} bytes (MAX_LINE_BYTES)`;
  return new ApiError('validation_error', `line ${line}: ${message}`, [{ line, message }]);
}

// Lines handed over at once: per-line promises would cost more than parsing the line.
const LINES_PER_YIELD = 512;

/**
 * Splits a byte stream into lines, handed over in groups, without ever holding more than one
 * line (at most `maxLineBytes`) plus one network chunk; a longer line is refused as soon as it
 * is seen, after the lines before it.
 */
export async function* readLines(
  body: ReadableStream<Uint8Array>,
  maxLineBytes: number,
): AsyncGenerator<NdjsonLine[]> {
  const reader = body.getReader();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((err: unknown) => {
        const reason = err instanceof Error ? err.message : String(err);
        throw new ApiError('invalid_json', `The upload was interrupted: ${reason}.`);
      });
      if (done) break;
      const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      let lines: NdjsonLine[] = [];
      let start = 0;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
        line++;
        if (pendingBytes + nl - start > maxLineBytes) {
          yield lines;
          throw tooLong(line, maxLineBytes);
        }
        const text =
          pendingBytes === 0
            ? buf.toString('utf8', start, nl)
            : Buffer.concat([...pending, buf.subarray(start, nl)]).toString('utf8');
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
        lines.push({ line, text });
        if (lines.length === LINES_PER_YIELD) {
          yield lines;
          lines = [];
        }
      }
      yield lines;
      if (start < buf.length) {
        pendingBytes += buf.length - start;
        if (pendingBytes > maxLineBytes) throw tooLong(line + 1, maxLineBytes);
        pending.push(buf.subarray(start));
      }
    }
    if (pendingBytes > 0) yield [{ line: line + 1, text: Buffer.concat(pending).toString('utf8') }];
  } finally {
    // Not cancel(): that would destroy the socket before the error answer is written; the
    // server drains what the client still sends.
    reader.releaseLock();
  }
}

function lineError(line: number, detail: ErrorDetail): ApiError {
  const where = detail.path ? `${detail.path}: ` : '';
  return new ApiError('validation_error', `line ${line}: ${where}${detail.message}`, [
    { line, ...detail },
  ]);
}

/** Limits of an NDJSON upload. */
export interface NdjsonLimits {
  maxLineBytes: number;
  maxRows: number;
}

/**
 * Reads an NDJSON upload line by line into `stager`; blank lines are skipped. Throws 422 naming
 * the first bad line (unparsable, or failing validation), 413 past `maxRows` items.
 */
export async function stageNdjson(
  body: ReadableStream<Uint8Array>,
  stager: ChunkStager,
  limits: NdjsonLimits,
): Promise<void> {
  for await (const lines of readLines(body, limits.maxLineBytes)) {
    for (const { line, text } of lines) {
      const trimmed = line === 1 ? text.replace(/^\uFEFF/, '').trim() : text.trim();
      if (trimmed === '') continue;
      if (stager.total >= limits.maxRows) {
        throw new ApiError(
          'payload_too_large',
          `The batch holds more than ${limits.maxRows} items (MAX_BATCH_ROWS); split it.`,
          [{ line, message: `item ${limits.maxRows + 1} is over MAX_BATCH_ROWS` }],
        );
      }
      let raw: unknown;
      try {
        raw = JSON.parse(trimmed);
      } catch (err) {
        throw lineError(line, { message: `is not valid JSON: ${(err as Error).message}` });
      }
      const detail = stager.add(raw);
      if (detail) throw lineError(line, detail);
    }
    await stager.drain();
  }
  await stager.finish();
}

/** Stages the items of a JSON batch body; throws 422 with `items[i]...` paths. */
export async function stageItems(items: unknown[], stager: ChunkStager): Promise<void> {
  for (const [i, item] of items.entries()) {
    const detail = stager.add(item);
    if (detail) {
      const path = detail.path ? `items[${i}].${detail.path}` : `items[${i}]`;
      throw new ApiError('validation_error', `${path}: ${detail.message}`, [
        { path, message: detail.message },
      ]);
    }
    if (i % LINES_PER_YIELD === 0) await stager.drain();
  }
  await stager.finish();
}
