import { ConfigError } from '../shared/config.js';
import { main } from './program.js';

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
main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`inferq: ${err.message}`);
  else console.error('inferq: failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
