import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { extname } from 'node:path';
import type { Writable } from 'node:stream';
import type { BatchResultLine, ModelMetadata } from '../client/index.js';
import { CliError } from './cli-error.js';

/** Where results go: a file, or stdout. */
export interface LineSink {
  /** Appends one line (without its newline); resolves when the stream can take more. */
  writeLine(line: string): Promise<void>;
  /** Appends bytes of whole lines (newlines included), after the lines before them. */
  writeBytes(bytes: Uint8Array): Promise<void>;
  /** Flushes and closes (stdout is flushed, not closed). */
  close(): Promise<void>;
}

/** One line of a batch's results as the server sent it. */
export interface ResultText {
  /** The JSON text of the line. */
  text: string;
  /** Its 0-based position in the batch. */
  index: number;
  /** Whether the row did not complete (failed or cancelled). */
  failed: boolean;
  /** The line parsed. */
  parse(): BatchResultLine;
}

// The server writes `index` first and `status` before any result field; a line that does not
// look so is parsed whole.
const HEAD = /^\{"index":(\d+),/;
const STATUS = /"status":"(\w+)"/;

/** Reads what following a batch needs from a result line, parsing it only when it must. */
export function resultText(text: string): ResultText {
  const index = HEAD.exec(text)?.[1];
  const status = STATUS.exec(text)?.[1];
  const parse = () => JSON.parse(text) as BatchResultLine;
  if (index !== undefined && status !== undefined)
    return { text, index: Number(index), failed: status !== 'completed', parse };
  const line = parse();
  return { text, index: line.index, failed: line.status !== 'completed', parse: () => line };
}

const INDEX_HEAD = Buffer.from('{"index":');
const STATUS_HEAD = Buffer.from('"status":"');
const COMPLETED = Buffer.from('completed"');

/**
 * The index of a result line and whether it did not complete, read from its bytes
 * (`bytes[start..end)`, without the newline) as resultText reads them from its text; undefined
 * when the line does not start the server's way (it is then read as text).
 */
export function resultHead(
  bytes: Buffer,
  start: number,
  end: number,
): { index: number; failed: boolean } | undefined {
  const digits = start + INDEX_HEAD.length;
  if (end <= digits || bytes.compare(INDEX_HEAD, 0, INDEX_HEAD.length, start, digits) !== 0)
    return undefined;
  let at = digits;
  let index = 0;
  for (let c = bytes[at]; c !== undefined && c >= 0x30 && c <= 0x39; c = bytes[++at])
    index = index * 10 + c - 0x30;
  if (at === digits || at - digits > 15 || bytes[at] !== 0x2c) return undefined;
  // Inside a JSON string a quote is escaped: `"status":"` can only be the member itself.
  const status = bytes.indexOf(STATUS_HEAD, at);
  const value = status + STATUS_HEAD.length;
  if (status < 0 || value + COMPLETED.length > end) return undefined;
  const completed =
    bytes.compare(COMPLETED, 0, COMPLETED.length, value, value + COMPLETED.length) === 0;
  return { index, failed: !completed };
}

/** Where result lines go, in their order: JSON Lines or Parquet. */
export interface ResultSink {
  /** Appends one result; resolves when the sink can take more. */
  write(result: ResultText): Promise<void>;
  /**
   * Appends result lines as the server sent them (whole lines, newlines included), when the
   * sink keeps the server's text; absent when each result must be read (Parquet).
   */
  writeBytes?(lines: Uint8Array): Promise<void>;
  /** Flushes and closes. */
  close(): Promise<void>;
}

// Lines are gathered into larger writes: one syscall per line is the bottleneck at 1M rows.
const FLUSH_CHARS = 64 * 1024;

async function openFile(path: string): Promise<Writable> {
  const file = createWriteStream(path);
  try {
    await once(file, 'open');
  } catch (err) {
    throw new CliError(`cannot write ${path}: ${(err as Error).message}`);
  }
  return file;
}

/** Opens `path` for writing (truncating it), or stdout when `path` is absent. */
export async function openSink(path?: string): Promise<LineSink> {
  const stream = path ? await openFile(path) : process.stdout;
  let failure: CliError | undefined;
  const onError = (err: NodeJS.ErrnoException) => {
    // A reader that went away (`inferq results x | head`) is not an error: stop like `cat` does.
    if (!path && err.code === 'EPIPE') process.exit(0);
    failure = new CliError(`cannot write ${path ?? 'stdout'}: ${err.message}`);
  };
  stream.on('error', onError);
  const check = () => {
    if (failure) throw failure;
  };
  const write = async (text: string | Uint8Array) => {
    check();
    if (stream.write(text)) return;
    // once() rejects on 'error'; onError has recorded it by then.
    await once(stream, 'drain').catch(() => undefined);
    check();
  };
  let pending = '';
  return {
    async writeLine(line) {
      pending += `${line}\n`;
      if (pending.length < FLUSH_CHARS) return;
      const text = pending;
      pending = '';
      await write(text);
    },
    async writeBytes(bytes) {
      if (pending) {
        const text = pending;
        pending = '';
        await write(text);
      }
      await write(bytes);
    },
    async close() {
      const text = pending;
      pending = '';
      if (text) await write(text);
      if (path) await new Promise<void>((resolve) => stream.end(resolve));
      check();
    },
  };
}

/** Whether results written to `path` are Parquet (by its extension). */
export function isParquetPath(path: string | undefined): boolean {
  return path !== undefined && extname(path).toLowerCase() === '.parquet';
}

/**
 * Opens the results file: Parquet for a `.parquet` path (its columns follow the model's task
 * and labels), JSON Lines otherwise, stdout when `path` is absent.
 */
export async function openResultSink(
  path: string | undefined,
  model: Pick<ModelMetadata, 'task' | 'labels'>,
): Promise<ResultSink> {
  if (path !== undefined && isParquetPath(path)) {
    const { openParquetSink } = await import('./parquet-output.js');
    return openParquetSink(path, model);
  }
  const lines = await openSink(path);
  // The server's own text is written: a million parse + stringify rounds would only make garbage.
  return {
    write: (result) => lines.writeLine(result.text),
    writeBytes: (bytes) => lines.writeBytes(bytes),
    close: () => lines.close(),
  };
}
