import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { InferqClient } from '../client/index.js';
import { runBatch, type BatchCommandOptions } from './batch.js';
import { CliError, describeError } from './cli-error.js';
import { runPredict, type PredictCommandOptions } from './predict.js';
import { runResults } from './results.js';

// The commands of a producer, which only calls the server. This file and what it imports are
// also the CLI of the client package (packages/client): no server code may be reached from here.

/** Options every client command takes. */
interface ConnectionOptions {
  url: string;
  apiKey?: string;
}

const DEFAULT_URL = 'http://127.0.0.1:8080';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
}

function priority(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10)
    throw new InvalidArgumentError('expected an integer from 1 (highest) to 10');
  return n;
}

function columnList(value: string): string[] {
  const names = value.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new InvalidArgumentError('expected column names: a,b,c');
  return names;
}

function withConnection(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'inferq server').env('INFERQ_URL').default(DEFAULT_URL))
    .addOption(new Option('--api-key <key>', 'API key').env('INFERQ_API_KEY'))
    .addOption(new Option('--exit-with-parent [pid]').hideHelp());
}

// Set by the action about to run, so a failure names the server it could not reach.
let currentUrl = DEFAULT_URL;

function clientFor(options: ConnectionOptions): InferqClient {
  if (!URL.canParse(options.url) || !/^https?:$/.test(new URL(options.url).protocol))
    throw new CliError(`--url must be an http(s) URL, got '${options.url}'`);
  currentUrl = options.url.replace(/\/+$/, '');
  return new InferqClient({ url: options.url, apiKey: options.apiKey });
}

/** A root command with the parser settings every inferq CLI shares. */
export function rootCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `\nClient commands reach the server at --url (default $INFERQ_URL or ${DEFAULT_URL}).`,
    );
}

/** Adds `predict`, `batch` and `results` to `root`. */
export function producerCommands(root: Command): Command {
  withConnection(
    root
      .command('predict')
      .description('one online prediction, printed as JSON')
      .argument('<model>', 'model name')
      .option('--version <version>', 'model version (default: the highest)')
      .option('--features <numbers>', 'one instance, comma-separated: 1.5,2,3')
      .option('--json <body>', 'a body: {"features": [...]} or {"instances": [[...], ...]}')
      .option('--file <path>', 'a JSON file holding such a body')
      .option(
        '--wait <seconds>',
        'seconds the server may hold the request for the result (the command then polls)',
        positiveNumber,
      ),
  ).action((model: string, options: ConnectionOptions & PredictCommandOptions) =>
    runPredict(clientFor(options), model, options),
  );
  withConnection(
    root
      .command('batch')
      .description(
        'run a CSV, JSON Lines or Parquet file as a batch and write its results in input order',
      )
      .argument(
        '<file>',
        'rows: file.csv (header optional), file.jsonl or file.parquet; an "id" column is kept',
      )
      .requiredOption('-m, --model <model>', 'model name')
      .option('--version <version>', 'model version (default: the highest)')
      .option('--priority <p>', '1 (highest) .. 10', priority)
      .option(
        '--columns <names>',
        "Parquet feature columns in the model's order (default: the model's feature names, " +
          'else every number column but id)',
        columnList,
      )
      .option(
        '-o, --output <file>',
        'results file: .parquet for Parquet, else JSON Lines (default: stdout)',
      ),
  ).action((file: string, options: ConnectionOptions & BatchCommandOptions) =>
    runBatch(clientFor(options), file, options),
  );
  withConnection(
    root
      .command('results')
      .description("stream a batch's results again, in input order")
      .argument('<batchId>', 'the id printed by inferq batch')
      .option(
        '-o, --output <file>',
        'results file: .parquet for Parquet, else JSON Lines (default: stdout)',
      ),
  ).action((batchId: string, options: ConnectionOptions & { output?: string }) =>
    runResults(clientFor(options), batchId, options),
  );
  return root;
}

/** Runs `<root> <command> ...`; failures print one line and set exit code 1. */
export async function runCommand(root: Command, args: string[]): Promise<void> {
  try {
    if (args.length === 0) {
      root.outputHelp();
      return;
    }
    await root.parseAsync(args, { from: 'user' });
  } catch (err) {
    // Commander has already printed its own usage errors.
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    process.stderr.write(`${root.name()}: ${describeError(err, currentUrl)}\n`);
    process.exitCode = 1;
  }
}
