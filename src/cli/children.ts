import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Absolute path of the `inferq` entry script. */
export const INFERQ_BIN = fileURLToPath(new URL('../../bin/inferq.js', import.meta.url));

/** Starts `node bin/inferq.js <args>` as a child that exits when this process dies. */
export function spawnInferq(args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [INFERQ_BIN, ...args, `--exit-with-parent=${process.pid}`], {
    stdio: 'inherit',
    ...options,
  });
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Sends SIGTERM to the child by pid, then SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = exited(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}
