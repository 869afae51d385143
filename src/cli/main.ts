import { ConfigError } from '../shared/config.js';

const USAGE = `Usage: inferq <command>

Commands:
  api       run the HTTP API
  worker    run an inference worker (run as many as you like)
  start     run the API and one worker locally (starts a private redis-server if none answers)

Settings come from the environment; see README.md.`;

async function run(command: string | undefined): Promise<void> {
  switch (command) {
    case 'api':
      return (await import('../api/main.js')).main();
    case 'worker':
      return (await import('../worker/main.js')).main();
    case 'start':
      return (await import('./start.js')).main();
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return;
    default:
      console.error(`inferq: unknown command "${command}"\n\n${USAGE}`);
      process.exitCode = 2;
  }
}

run(process.argv[2]).catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`inferq: ${err.message}`);
  else console.error('inferq: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
