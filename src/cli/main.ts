import { ConfigError } from '../shared/config.js';

const USAGE = `Usage: inferq <command>

Commands:
  api       run the HTTP API
  worker    run an inference worker (run as many as you like)
  start     run the API and one worker locally (starts a private redis-server if none answers)

Client commands (reach the server at --url, default $INFERQ_URL or http://127.0.0.1:8080):
  predict <model> --features 1,2,3          one online prediction
  batch <file.csv|file.jsonl> --model m -o results.jsonl
                                            a batch with a progress bar; results in input order
  results <batchId> [-o results.jsonl]      a batch's results again
  (inferq <command> --help for their options)

Settings come from the environment; see README.md.`;

async function run(command: string | undefined): Promise<void> {
  switch (command) {
    case 'api':
      return (await import('../api/main.js')).main();
    case 'worker':
      return (await import('../worker/main.js')).main();
    case 'start':
      return (await import('./start.js')).main();
    case 'predict':
    case 'batch':
    case 'results':
      return (await import('./client-commands.js')).main(process.argv.slice(2));
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

// Children of `inferq start`, tests and benchmarks get `--exit-with-parent=<pid>`: they follow
// that parent out even if it dies before they finished starting (an orphaned worker would keep
// consuming the queue). A graceful SIGTERM handler, once installed, does the shutdown.
function followParent(argv: string[]): void {
  const flag = argv.find((a) => a === '--exit-with-parent' || a.startsWith('--exit-with-parent='));
  if (!flag) return;
  const parent = Number(flag.split('=')[1]) || process.ppid;
  const check = () => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  };
  check();
  setInterval(check, 500).unref();
}

followParent(process.argv);
run(process.argv[2]).catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`inferq: ${err.message}`);
  else console.error('inferq: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
