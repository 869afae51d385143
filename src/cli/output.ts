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

/** Where result lines go, in their order: JSON Lines or Parquet. */
export interface ResultSink {
  /** Appends one result; resolves when the sink can take more. */
  write(result: ResultText): Promise<void>;
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
  const write = async (text: string) => {
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
    close: () => lines.close(),
  };
}
