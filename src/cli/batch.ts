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
import { useSmallYoungGeneration } from './memory.js';
import { openResultSink } from './output.js';
import { backoffMs, isDropped, MAX_ATTEMPTS } from './retry.js';
import {
  assertReadableFile,
  countRows,
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
): Promise<BatchAccepted> {
  for (let attempt = 1; ; attempt++) {
    const sent = { all: false };
    try {
      return await client.createBatch(model.name, items(file, read, sent), {
        version: model.version,
        priority: options.priority,
      });
    } catch (err) {
      if (!(err instanceof InferqError)) throw err;
      if (!isDropped(err) || attempt >= MAX_ATTEMPTS) throw await rejection(err, file);
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
 * `inferq batch <file> --model m`: checks every row locally, streams the file up as NDJSON,
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
  // A first pass finds a bad row before anything is queued; memory stays flat either way.
  if ((await countRows(file, read)) === 0) throw new CliError(`${file} holds no rows`);
  const batch = await upload(client, file, model, read, options, say);
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
