import { readFile } from 'node:fs/promises';
import { isAccepted, type InferqClient, type PredictInput } from '../client/index.js';
import { CliError } from './cli-error.js';
import { assertReadableFile } from './rows.js';

/** Options of `inferq predict`. */
export interface PredictCommandOptions {
  version?: string;
  /** Comma-separated numbers of one instance. */
  features?: string;
  /** A request body: `{"features": [...]}`, `{"instances": [[...]]}` or a bare array. */
  json?: string;
  /** A file holding such a body. */
  file?: string;
  /** Seconds the server may wait before answering 202 (then the command keeps polling). */
  wait?: number;
}

function parseFeatures(text: string): number[] {
  return text
    .split(/[\s,]+/)
    .filter((t) => t !== '')
    .map((t) => {
      const value = Number(t);
      if (!Number.isFinite(value)) throw new CliError(`--features: expected numbers, got '${t}'`);
      return value;
    });
}

function parseBody(text: string, source: string): PredictInput {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  if (Array.isArray(value)) return value as number[] | number[][];
  if (value && typeof value === 'object' && ('features' in value || 'instances' in value))
    return value as PredictInput;
  throw new CliError(`${source} must hold {"features": [...]} or {"instances": [[...], ...]}`);
}

async function readInput(options: PredictCommandOptions): Promise<PredictInput> {
  const given = [options.features, options.json, options.file].filter((o) => o !== undefined);
  if (given.length !== 1)
    throw new CliError('give the input with exactly one of --features, --json or --file');
  if (options.features !== undefined) return parseFeatures(options.features);
  if (options.json !== undefined) return parseBody(options.json, '--json');
  const file = options.file as string;
  await assertReadableFile(file);
  return parseBody(await readFile(file, 'utf8'), file);
}

/** `inferq predict <model>`: one online prediction, printed as JSON. */
export async function runPredict(
  client: InferqClient,
  model: string,
  options: PredictCommandOptions,
): Promise<void> {
  const input = await readInput(options);
  const answer = await client.predict(model, input, {
    version: options.version,
    wait: options.wait,
  });
  if (!isAccepted(answer)) {
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    return;
  }
  // Not done within the server's wait: keep long-polling the job it queued.
  const job = await client.waitForJob(answer.id);
  if (job.status === 'failed')
    throw new CliError(
      `job ${job.id} failed: ${job.error?.message ?? 'unknown error'} [${job.error?.code ?? 'inference_failed'}]`,
    );
  if (job.status !== 'completed') throw new CliError(`job ${job.id} was ${job.status}`);
  const body = { id: job.id, model: job.model, version: job.version, cached: false, ...job.result };
  process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
}
