import {
  InferqError,
  type BatchItem,
  type InferqClient,
  type ModelMetadata,
} from '../client/index.js';
import { CliError, describeError } from './cli-error.js';
import { followBatch } from './follow.js';
import { openSink } from './output.js';
import { assertReadableFile, countRows, lineOfItem, readRows } from './rows.js';

/** Options of `inferq batch`. */
export interface BatchCommandOptions {
  model: string;
  version?: string;
  priority?: number;
  /** Results file; stdout when absent. */
  output?: string;
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

async function* items(file: string, width: number | undefined): AsyncGenerator<BatchItem> {
  for await (const row of readRows(file, width)) yield row.item;
}

// A rejection names the upload's item number; the user needs the line of their file.
async function rejection(err: InferqError, file: string): Promise<Error> {
  const detail = err.details?.find((d) => d.line !== undefined);
  if (err.status !== 422 || detail?.line === undefined) return err;
  const line = await lineOfItem(file, detail.line);
  const where = line === undefined ? `item ${detail.line}` : `line ${line}`;
  const what = detail.path ? `${detail.path} ${detail.message}` : detail.message;
  return new CliError(`${file} ${where}: ${what} (the server refused the batch)`);
}

/**
 * `inferq batch <file> --model m`: checks every row locally, streams the file up as NDJSON,
 * prints the batch id, then follows the batch and writes its results in input order.
 */
export async function runBatch(
  client: InferqClient,
  file: string,
  options: BatchCommandOptions,
): Promise<void> {
  const say = statusWriter(options.output);
  await assertReadableFile(file);
  const model = await client.getModel(options.model, options.version);
  const width = rowWidth(model);
  // A first pass finds a bad row before anything is queued; memory stays flat either way.
  if ((await countRows(file, width)) === 0) throw new CliError(`${file} holds no rows`);
  const batch = await client
    .createBatch(model.name, items(file, width), {
      version: model.version,
      priority: options.priority,
    })
    .catch(async (err: unknown) => {
      throw err instanceof InferqError ? await rejection(err, file) : err;
    });
  say(
    `batch ${batch.id} queued: ${batch.total} rows for ${model.name} ${model.version}; ` +
      `fetch results again with: inferq results ${batch.id}`,
  );
  const sink = await openSink(options.output);
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
