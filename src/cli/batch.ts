import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  InferqError,
  type BatchAccepted,
  type BatchItem,
  type InferqClient,
  type ModelMetadata,
} from '../client/index.js';
import { CliError, describeError } from './cli-error.js';
import { followBatch } from './follow.js';
import { useCompactHeap, useSmallYoungGeneration } from './memory.js';
import { openResultSink } from './output.js';
import { backoffMs, isDropped, MAX_ATTEMPTS } from './retry.js';
import {
  assertReadableFile,
  countRows,
  isParquetFile,
  lineOfItem,
  positionWord,
  readRows,
  type ReadRowsOptions,
} from './rows.js';

/** Options of `inferq batch`. */
export interface BatchCommandOptions {
  model: string;
  version?: string;
  priority?: number;
  /** Results file (`.parquet`: Parquet, else JSON Lines); stdout when absent. */
  output?: string;
  /** Feature columns of a Parquet file, in model order. */
  columns?: string[];
}

/** Status lines go to stdout, or to stderr when stdout carries the results. */
export function statusWriter(output: string | undefined): (line: string) => void {
  return (line) => (output ? process.stdout : process.stderr).write(`${line}\n`);
}

/** Values in one instance of the model's first input, when fixed. */
function rowWidth(model: ModelMetadata): number | undefined {
  const dims = model.inputs[0]?.shape.slice(1) ?? [];
  if (dims.some((d) => d < 0)) return undefined;
  return dims.reduce((a, b) => a * b, 1);
}

// A rejection names the upload's item number; the user needs the line of their file.
async function rejection(err: InferqError, file: string): Promise<Error> {
  const detail = err.details?.find((d) => d.line !== undefined);
  if (err.status !== 422 || detail?.line === undefined) return err;
  const line = await lineOfItem(file, detail.line);
  const where = line === undefined ? `item ${detail.line}` : `${positionWord(file)} ${line}`;
  const what = detail.path ? `${detail.path} ${detail.message}` : detail.message;
  return new CliError(`${file} ${where}: ${what} (the server refused the batch)`);
}

/**
 * Whether a JSON Lines file can go up byte for byte: its first line is already an item in the
 * server's form. The server checks every line itself (and drops the whole batch, naming the
 * line, if one is bad), so the CLI then neither parses nor re-serialises the rows.
 */
export async function sendsAsIs(file: string): Promise<boolean> {
  if (!/\.(jsonl|ndjson)$/i.test(file)) return false;
  const handle = await open(file, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(65_536), 0, 65_536, 0);
    const text = buffer.subarray(0, bytesRead).toString('utf8');
    const end = text.indexOf('\n');
    if (end < 0) return false;
    const item = JSON.parse(text.slice(0, end)) as unknown;
    return (
      typeof item === 'object' &&
      item !== null &&
      Array.isArray((item as { features?: unknown }).features) &&
      ['string', 'undefined'].includes(typeof (item as { id?: unknown }).id)
    );
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}

/** Bytes read from the file at a time for an as-is upload (fewer, larger writes to the socket). */
const UPLOAD_READ_BYTES = 1 << 20;

/**
 * How a file goes up: JSON Lines in the server's form byte for byte; a Parquet table as NDJSON
 * written straight from its columns (one line per row); anything else as parsed items.
 */
type UploadForm = 'as-is' | 'parquet' | 'items';

/** What one attempt of an upload sends, read afresh from the file. */
async function uploadSource(
  form: UploadForm,
  file: string,
  read: ReadRowsOptions,
  sent: { all: boolean },
) {
  if (form === 'as-is')
    return { ndjson: sentAll(createReadStream(file, { highWaterMark: UPLOAD_READ_BYTES }), sent) };
  if (form === 'items') return items(file, read, sent);
  const { parquetNdjson } = await import('./parquet-input.js');
  useCompactHeap();
  return { ndjson: sentAll(parquetNdjson(file, read), sent) };
}

/** The file's bytes, noting when the last chunk was handed over. */
async function* sentAll(
  chunks: AsyncIterable<Uint8Array>,
  sent: { all: boolean },
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) yield chunk;
  sent.all = true;
}

// Sent as is, the server's line numbers are the file's.
function serverRejection(err: InferqError, file: string): Error {
  const detail = err.details?.find((d) => d.line !== undefined);
  if (err.status !== 422 || detail?.line === undefined) return err;
  const what = detail.path ? `${detail.path} ${detail.message}` : detail.message;
  return new CliError(`${file} line ${detail.line}: ${what} (the server refused the batch)`);
}

/** The file's items, noting when the last one was handed over. */
async function* items(
  file: string,
  read: ReadRowsOptions,
  sent: { all: boolean },
): AsyncGenerator<BatchItem> {
  for await (const row of readRows(file, read)) yield row.item;
  sent.all = true;
}

/**
 * Uploads the file as a batch. The server drops a batch whose upload broke (its record, staged
 * rows and queued chunks; a chunk already running stores nothing), so a dropped connection
 * leaves no half batch behind: the file is simply sent again (up to MAX_ATTEMPTS times).
 */
async function upload(
  client: InferqClient,
  file: string,
  model: ModelMetadata,
  read: ReadRowsOptions,
  options: BatchCommandOptions,
  say: (line: string) => void,
  form: UploadForm,
): Promise<BatchAccepted> {
  const asIs = form === 'as-is';
  for (let attempt = 1; ; attempt++) {
    const sent = { all: false };
    try {
      const source = await uploadSource(form, file, read, sent);
      return await client.createBatch(model.name, source, {
        version: model.version,
        priority: options.priority,
      });
    } catch (err) {
      if (!(err instanceof InferqError)) throw err;
      if (!isDropped(err) || attempt >= MAX_ATTEMPTS)
        throw asIs ? serverRejection(err, file) : await rejection(err, file);
      // Past the last byte the server may have queued the batch before its answer was lost.
      const lost = sent.all ? '; its answer was lost after the whole file was sent' : '';
      say(
        `the upload of ${file} broke (${describeError(err, client.url)})${lost}; ` +
          `sending it again (attempt ${attempt + 1} of ${MAX_ATTEMPTS})`,
      );
      await sleep(backoffMs(attempt));
    }
  }
}

/**
 * JSON Lines in the server's form go up as they are (the server checks them); if the server
 * refuses one, the file is checked here: a line only this CLI reads (a bare array, a numeric
 * id) sends the file again as parsed items, a bad line is named. Other files are checked here
 * first, in a pass of their own, so that a bad row stops the upload before anything is queued.
 */
async function uploadFile(
  client: InferqClient,
  file: string,
  model: ModelMetadata,
  read: ReadRowsOptions,
  options: BatchCommandOptions,
  say: (line: string) => void,
): Promise<BatchAccepted> {
  if (!options.columns && (await sendsAsIs(file))) {
    try {
      return await upload(client, file, model, read, options, say, 'as-is');
    } catch (err) {
      if (!(err instanceof CliError)) throw err;
      // Throws naming the line when the file is bad for this CLI too.
      await countRows(file, read);
    }
  }
  if ((await countRows(file, read)) === 0) throw new CliError(`${file} holds no rows`);
  return upload(client, file, model, read, options, say, isParquetFile(file) ? 'parquet' : 'items');
}

/**
 * `inferq batch <file> --model m`: streams the file up as NDJSON (checked here first unless it
 * is JSON Lines the server reads as they are),
 * prints the batch id, then follows the batch and writes its results in input order. Dropped
 * connections are retried: the upload is sent again, the results resume after the last line.
 */
export async function runBatch(
  client: InferqClient,
  file: string,
  options: BatchCommandOptions,
): Promise<void> {
  useSmallYoungGeneration();
  const say = statusWriter(options.output);
  await assertReadableFile(file);
  const model = await client.getModel(options.model, options.version);
  const read: ReadRowsOptions = {
    width: rowWidth(model),
    featureNames: model.features,
    columns: options.columns,
  };
  const batch = await uploadFile(client, file, model, read, options, say);
  say(
    `batch ${batch.id} queued: ${batch.total} rows for ${model.name} ${model.version}; ` +
      `fetch results again with: inferq results ${batch.id}`,
  );
  const sink = await openResultSink(options.output, model);
  let result;
  try {
    result = await followBatch(client, batch.id, batch.total, sink);
  } catch (err) {
    // The batch is queued whatever happened here: say how to get its results.
    const hint = `the batch keeps running; fetch its results with: inferq results ${batch.id}`;
    throw new CliError(`${describeError(err, client.url)}; ${hint}`);
  }
  const seconds = (result.ms / 1000).toFixed(1);
  say(
    `batch ${batch.id} done: ${result.written} rows (${result.failed} failed) in ${seconds} s` +
      (options.output ? ` -> ${options.output}` : ''),
  );
}
