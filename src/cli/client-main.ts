// Entry of the client package's `inferq-client` bin: the producer commands only, so that it
// runs without any server dependency installed.
import { producerCommands, rootCommand, runCommand } from './producer-commands.js';

const root = rootCommand(
  'inferq-client',
  'Producer commands of inferq: online predictions and batches against a running server.',
);
await runCommand(producerCommands(root), process.argv.slice(2));
