import { setImmediate } from 'node:timers/promises';
import { checkItem, encodeChunk } from '../../shared/batches.js';
import { ApiError, type ErrorDetail } from '../../shared/errors.js';
import { readItemFast, type IdSpan } from './ndjson-item.js';

/**
 * Where a stager hands its chunks: the batch service stages each in Redis and queues its job at
 * once, so rows run while the upload is still being read.
 */
export interface ChunkSink {
  /** Stages chunk `chunk` (encodeChunk bytes of `rows` rows) and queues its job. */
  stage(chunk: number, staged: Buffer, rows: number): Promise<void>;
  /** The upload was read to its end: `total` rows in `chunks` chunks. */
  seal(total: number, chunks: number): Promise<void>;
  /** The upload failed: cancels the `chunks` chunks staged so far; none of their results is served. */
  reject(chunks: number): Promise<void>;
}

/** How a batch's rows are cut into chunks and where the chunks go. */
export interface StagerOptions {
  batchId: string;
  /** Values per row (the model's input width). */
  rowSize: number;
  /** Rows per chunk (BATCH_CHUNK_ROWS). */
  chunkRows: number;
  sink: ChunkSink;
}

// Chunks being staged at once: enough to overlap parsing with Redis, few enough to bound memory.
const MAX_INFLIGHT_CHUNKS = 4;

/**
 * Collects validated rows into chunks and hands each full chunk to its sink while the upload is
 * still being read, so the API holds at most a few chunks of a batch in memory. Ends with `seal`
 * (every row was valid) or `discard` (nothing of the batch may run on or be served).
 */
export class ChunkStager {
  /** Rows accepted so far. */
  total = 0;
  /** Chunks handed to the sink (or being handed) so far. */
  chunks = 0;
  private values: Float32Array;
  private ids = new IdTexts();
  private readonly id: IdSpan = { start: -1, end: -1 };
  private rows = 0;
  private inflight: Promise<void>[] = [];
  private failure: Error | undefined;
  private ended = false;
  private discarded = false;

  constructor(readonly options: StagerOptions) {
    this.values = new Float32Array(options.chunkRows * options.rowSize);
  }

  /**
   * Checks `raw` as the next item and stages it; returns what is wrong with it, if anything.
   * A full chunk is handed over at once; call `drain` now and then to bound the chunks in flight.
   */
  add(raw: unknown): ErrorDetail | undefined {
    const { rowSize, chunkRows } = this.options;
    const checked = checkItem(raw, rowSize, this.values, this.rows * rowSize);
    if (!checked.ok) return checked.detail;
    if (checked.id === undefined) this.ids.none();
    else this.ids.text(Buffer.from(JSON.stringify(checked.id)));
    this.accept(chunkRows);
    return undefined;
  }

  /**
   * Stages one NDJSON line of the usual shape read straight from its bytes; false when the line
   * needs the full parser (JSON.parse, then `add`), which also names what is wrong with it.
   */
  addLine(bytes: Uint8Array, start: number, end: number): boolean {
    const { rowSize, chunkRows } = this.options;
    const { id } = this;
    if (!readItemFast(bytes, start, end, this.values, this.rows * rowSize, rowSize, id)) {
      return false;
    }
    if (id.start < 0) this.ids.none();
    else this.ids.text(bytes, id.start, id.end);
    this.accept(chunkRows);
    return true;
  }

  private accept(chunkRows: number): void {
    this.rows++;
    this.total++;
    if (this.rows === chunkRows) this.flush();
  }

  /** Waits until few enough chunks are in flight; rethrows a failed hand-over. */
  async drain(): Promise<void> {
    while (this.inflight.length >= MAX_INFLIGHT_CHUNKS) await this.inflight.shift();
    if (this.failure) throw this.failure;
  }

  /** Hands over the last partial chunk and waits until every chunk is staged and queued. */
  async finish(): Promise<void> {
    if (this.rows > 0) this.flush();
    await Promise.all(this.inflight);
    this.inflight = [];
    if (this.failure) throw this.failure;
  }

  /** Ends a fully read and staged upload: the batch becomes visible to its owner. */
  async seal(): Promise<void> {
    if (this.ended) throw new Error(`batch ${this.options.batchId} has already ended`);
    this.ended = true;
    await this.options.sink.seal(this.total, this.chunks);
  }

  /** Cancels every chunk handed over (after a bad line or a broken upload); safe to call twice. */
  async discard(): Promise<void> {
    await Promise.all(this.inflight);
    this.inflight = [];
    if (this.discarded) return;
    [this.discarded, this.ended] = [true, true];
    await this.options.sink.reject(this.chunks);
  }

  private flush(): void {
    const { rowSize, sink } = this.options;
    const buf = encodeChunk({
      rows: this.rows,
      rowSize,
      ids: this.ids.bytes(),
      values: this.values.subarray(0, this.rows * rowSize),
    });
    // Errors are kept and rethrown by drain or finish: no rejection goes unhandled.
    this.inflight.push(
      sink.stage(this.chunks++, buf, this.rows).then(
        () => undefined,
        (err: unknown) =>
          void (this.failure ??= err instanceof Error ? err : new Error(String(err))),
      ),
    );
    this.rows = 0;
    this.ids = new IdTexts();
  }
}

/**
 * The ids section of a staged chunk (see encodeChunk) built as bytes: each row's id as its JSON
 * text, '' where it has none, joined by newlines. An NDJSON line's id is copied as it stands in
 * the upload, never decoded into a string and written again.
 */
class IdTexts {
  private buf = Buffer.allocUnsafe(4096);
  private length = 0;
  private rows = 0;
  private any = false;

  /** The next row has no id. */
  none(): void {
    if (this.rows++ > 0) this.put(NEWLINE, 0, 1);
  }

  /** The next row's id, as the JSON text in `bytes[start, end)`. */
  text(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.none();
    this.any = true;
    this.put(bytes, start, end);
  }

  /** The section's bytes; empty when no row had an id. */
  bytes(): Uint8Array {
    return this.any ? this.buf.subarray(0, this.length) : new Uint8Array(0);
  }

  private put(bytes: Uint8Array, start: number, end: number): void {
    const needed = this.length + end - start;
    if (needed > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    // Byte by byte: an id is a few bytes, and a view of them (subarray) cost more than the copy.
    const buf = this.buf;
    for (let i = start, at = this.length; i < end; i++, at++) buf[at] = bytes[i]!;
    this.length = needed;
  }
}

const NEWLINE = Buffer.from('\n');

/** One line of an NDJSON upload: its 1-based number and its bytes, `bytes[start, end)`. */
export interface NdjsonLine {
  line: number;
  bytes: Buffer;
  start: number;
  end: number;
}

/** Limits of an NDJSON upload. */
export interface NdjsonLimits {
  /** Longest line, bytes (MAX_LINE_BYTES). */
  maxLineBytes: number;
  /** Most lines, blank ones included (MAX_BATCH_ROWS). */
  maxRows: number;
  /** Most bytes of the upload, blank lines included (MAX_BATCH_BYTES). */
  maxBytes: number;
}

function tooLong(line: number, maxLineBytes: number): ApiError {
  const message = `line is longer than ${maxLineBytes} bytes (MAX_LINE_BYTES)`;
  return new ApiError('validation_error', `line ${line}: ${message}`, [{ line, message }]);
}

function tooManyLines(line: number, maxRows: number): ApiError {
  return new ApiError(
    'payload_too_large',
    `The batch holds more than ${maxRows} lines (MAX_BATCH_ROWS, blank lines included); split it.`,
    [{ line, message: `line ${line} is over MAX_BATCH_ROWS` }],
  );
}

function tooManyBytes(maxBytes: number): ApiError {
  return new ApiError(
    'payload_too_large',
    `The upload is larger than ${maxBytes} bytes (MAX_BATCH_BYTES); split it.`,
  );
}

// Lines handed over at once: per-line promises would cost more than parsing the line.
const LINES_PER_YIELD = 512;
// Longest stretch of reading and parsing before other requests get the event loop.
const BUSY_MS = 5;

/**
 * Splits a byte stream into lines, handed over in groups, without ever holding more than one
 * line (at most `maxLineBytes`) plus one network chunk. Every byte and every line, blank ones
 * included, counts toward the limits: a longer line, line `maxRows + 1` or byte `maxBytes + 1`
 * is refused as soon as it is seen, after the lines before it. Blank lines are counted, not
 * handed over.
 */
export async function* readLines(
  body: AsyncIterable<Uint8Array>,
  limits: NdjsonLimits,
): AsyncGenerator<NdjsonLine[]> {
  const { maxLineBytes, maxRows, maxBytes } = limits;
  const chunks = body[Symbol.asyncIterator]();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  let received = 0;
  try {
    for (;;) {
      const next: IteratorResult<Uint8Array, unknown> = await chunks
        .next()
        .catch((err: unknown) => {
          const reason = err instanceof Error ? err.message : String(err);
          throw new ApiError('invalid_json', `The upload was interrupted: ${reason}.`);
        });
      if (next.done) break;
      const value = next.value;
      received += value.byteLength;
      if (received > maxBytes) throw tooManyBytes(maxBytes);
      const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      let lines: NdjsonLine[] = [];
      let start = 0;
      for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
        line++;
        if (line > maxRows) {
          yield lines;
          throw tooManyLines(line, maxRows);
        }
        if (pendingBytes + nl - start > maxLineBytes) {
          yield lines;
          throw tooLong(line, maxLineBytes);
        }
        const blank =
          pendingBytes === 0 && (nl === start || (nl === start + 1 && buf[start] === 13));
        if (!blank) {
          if (pendingBytes === 0) {
            lines.push({ line, bytes: buf, start, end: nl });
          } else {
            const bytes = Buffer.concat([...pending, buf.subarray(start, nl)]);
            lines.push({ line, bytes, start: 0, end: bytes.length });
          }
        }
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
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
    if (pendingBytes > 0) {
      if (line + 1 > maxRows) throw tooManyLines(line + 1, maxRows);
      const bytes = Buffer.concat(pending);
      yield [{ line: line + 1, bytes, start: 0, end: bytes.length }];
    }
  } finally {
    // Lets go of the body without destroying it (see `requestBytes`): the socket must outlive
    // the error answer, and the server drains what the client still sends.
    await chunks.return?.();
  }
}

function lineError(line: number, detail: ErrorDetail): ApiError {
  const where = detail.path ? `${detail.path}: ` : '';
  return new ApiError('validation_error', `line ${line}: ${where}${detail.message}`, [
    { line, ...detail },
  ]);
}

/**
 * Reads an NDJSON upload line by line into `stager`; blank lines are skipped (but counted).
 * Throws 422 naming the first bad line (unparsable, or failing validation), 413 past
 * `maxRows` lines or `maxBytes` bytes. Gives the event loop back every few milliseconds, so
 * a large upload does not delay other requests.
 */
export async function stageNdjson(
  body: AsyncIterable<Uint8Array>,
  stager: ChunkStager,
  limits: NdjsonLimits,
): Promise<void> {
  let busySince = performance.now();
  for await (const lines of readLines(body, limits)) {
    for (const { line, bytes, start, end } of lines) {
      if (stager.addLine(bytes, start, end)) continue;
      const text = bytes.toString('utf8', start, end);
      const trimmed = line === 1 ? text.replace(/^\uFEFF/, '').trim() : text.trim();
      if (trimmed === '') continue;
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
    if (performance.now() - busySince > BUSY_MS) {
      await setImmediate();
      busySince = performance.now();
    }
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
