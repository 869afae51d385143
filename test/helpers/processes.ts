import type { ChildProcess } from 'node:child_process';
import { exited, spawnInferq, stopChild } from '../../src/cli/children.js';
import { freePort } from './redis-server.js';

/** A real `inferq` child process started by a test. */
export interface InferqProcess {
  child: ChildProcess;
  /** The last 64 KiB of what it printed (for failure messages). */
  output(): string;
  /** Resolves with the exit code once it has exited. */
  exited(): Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
  /** `kill -9` by pid; resolves once it is gone. */
  kill9(): Promise<void>;
}

/** A real API process and its base URL. */
export interface ApiProcess extends InferqProcess {
  port: number;
  url: string;
}

function start(args: string[], env: Record<string, string>, readyLine: string) {
  const child = spawnInferq(args, {
    // Readiness is read from the info-level start line.
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let onLine: (() => void) | undefined;
  const append = (chunk: Buffer) => {
    out = (out + chunk.toString('utf8')).slice(-65_536);
    if (out.includes(readyLine)) onLine?.();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const proc: InferqProcess = {
    child,
    output: () => out,
    exited: () => exited(child),
    stop: (graceMs = 10_000) => stopChild(child, graceMs),
    kill9: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = exited(child);
      child.kill('SIGKILL');
      await gone;
    },
  };
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`inferq ${args.join(' ')} not ready within 30 s:\n${out}`));
    }, 30_000);
    onLine = () => {
      clearTimeout(timer);
      onLine = undefined;
      resolve();
    };
    void exited(child).then((code) => {
      clearTimeout(timer);
      reject(new Error(`inferq ${args.join(' ')} exited (${code}) at start:\n${out}`));
    });
  });
  return { proc, ready };
}

/** Starts `inferq worker` and resolves once it consumes the queue. */
export async function startWorkerProcess(env: Record<string, string>): Promise<InferqProcess> {
  const { proc, ready } = start(['worker'], env, '"msg":"worker started"');
  try {
    await ready;
  } catch (err) {
    await proc.kill9();
    throw err;
  }
  return proc;
}

/** Starts `inferq api` on a free port and resolves once it listens. */
export async function startApiProcess(env: Record<string, string>): Promise<ApiProcess> {
  const port = await freePort();
  const { proc, ready } = start(
    ['api'],
    { HOST: '127.0.0.1', ...env, PORT: String(port) },
    '"msg":"api listening"',
  );
  try {
    await ready;
  } catch (err) {
    await proc.kill9();
    throw err;
  }
  return { ...proc, port, url: `http://127.0.0.1:${port}` };
}

/** Stops every given process by pid, ignoring those already gone. */
export async function stopAll(procs: (InferqProcess | undefined)[], graceMs = 5000): Promise<void> {
  await Promise.all(procs.map((p) => (p ? p.stop(graceMs) : Promise.resolve())));
}
