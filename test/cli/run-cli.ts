import { spawn, type ChildProcess } from 'node:child_process';
import { INFERQ_BIN, stopChild } from '../../src/cli/children.js';

/** What a finished CLI run printed. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const running = new Set<ChildProcess>();

/**
 * Runs `node <entry> ...args` (the real CLI: bin/inferq.js by default) in `cwd` to its end;
 * stopped by pid if it outlives `timeoutMs`. `nodeArgs` go before the entry.
 */
export async function runCli(
  cwd: string,
  args: string[],
  options: { entry?: string; nodeArgs?: string[]; timeoutMs?: number } = {},
): Promise<CliRun> {
  const env = { ...process.env };
  delete env.INFERQ_URL;
  delete env.INFERQ_API_KEY;
  const entry = options.entry ?? INFERQ_BIN;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), entry, ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const timer = setTimeout(() => void stopChild(child, 1000), options.timeoutMs ?? 45_000);
  try {
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    running.delete(child);
  }
}

/** Stops, by pid, every CLI child still running (for afterAll). */
export async function stopRunningClis(): Promise<void> {
  await Promise.all([...running].map((c) => stopChild(c, 1000)));
}

/** The non-empty lines of a text. */
export const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');
