import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** What one load run measured (latencies in ms, from each 2xx response's own timing). */
export interface LoadResult {
  /** 2xx responses per second of the run. */
  reqPerSec: number;
  /** Responses of any status. */
  total: number;
  /** 2xx responses. */
  ok: number;
  /** Length of the run, seconds. */
  durationS: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** CPU seconds the load generator itself used over the run. */
  cpuS?: number;
  /** Every 2xx latency (ms, 0.001 precision), when `samples` was asked for. */
  samples?: number[];
}

/** Options of runLoad (see bench/load-child.ts). */
export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  connections: number;
  durationS?: number;
  amount?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Each request sends a row of this width unique in float32 (see lib/rows.ts). */
  uniqueWidth?: number;
  /** Row number of the first unique row. */
  seed?: number;
  /** Return every 2xx latency, so that runs can be merged. */
  samples?: boolean;
}

/** Hooks of runLoad. */
export interface LoadHooks {
  /** Called once the load process is up, just before it sends its first request. */
  onReady?: () => Promise<void>;
  /** Receives the child right after it is spawned (to stop it by pid on failure). */
  track?: (child: ChildProcess) => void;
}

const CHILD = fileURLToPath(new URL('../load-child.ts', import.meta.url));

/** Runs autocannon in its own process and returns its summary; the child is always reaped. */
export function runLoad(options: LoadOptions, hooks: LoadHooks = {}): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(options)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    hooks.track?.(child);
    // A child that died before "go" closes its stdin; the write must not crash the bench.
    child.stdin.on('error', () => undefined);
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line !== '{"ready":true}') return void lines.push(line);
      // The child waits for "go" so that whatever onReady measures starts with the first request.
      (hooks.onReady ?? (() => Promise.resolve()))().then(
        () => child.stdin.end('go\n'),
        (err: unknown) => {
          child.kill('SIGKILL');
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
    const limit = setTimeout(() => child.kill('SIGKILL'), ((options.durationS ?? 60) + 60) * 1000);
    child.on('close', (code) => {
      clearTimeout(limit);
      try {
        const parsed = JSON.parse(lines.pop() ?? '{}') as LoadResult & { error?: string };
        if (parsed.error || code !== 0)
          reject(new Error(parsed.error ?? `load generator exited ${code}`));
        else resolve(parsed);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
