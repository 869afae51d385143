import { Option, type Command } from 'commander';
import { producerCommands, rootCommand, runCommand } from './producer-commands.js';

// Children of `inferq start`, tests and benchmarks get it (see main.ts); not for users.
const exitWithParent = () => new Option('--exit-with-parent [pid]').hideHelp();

/** The server commands: each loads its own code only when run. */
function serverCommands(root: Command): void {
  root
    .command('api')
    .description('run the HTTP API (settings from the environment; see docs)')
    .addOption(exitWithParent())
    .action(async () => (await import('../api/main.js')).main());
  root
    .command('worker')
    .description('run an inference worker (run as many as you like, on many hosts)')
    .addOption(exitWithParent())
    .action(async () => (await import('../worker/main.js')).main());
  root
    .command('start')
    .description(
      'run the API and one worker locally (and a private redis-server if none answers at REDIS_URL)',
    )
    .addOption(exitWithParent())
    .action(async () => (await import('./start.js')).main());
}

/** Every `inferq` command under one parser: `inferq <command> --help` prints its help. */
export function program(): Command {
  const root = rootCommand(
    'inferq',
    'Queue-backed ONNX inference: API, workers and producer commands.',
  ).addHelpText('after', 'Server settings come from the environment.');
  serverCommands(root);
  return producerCommands(root);
}

/** Runs `inferq <command> ...`; failures print one line and set exit code 1. */
export async function main(args: string[]): Promise<void> {
  await runCommand(program(), args);
}
