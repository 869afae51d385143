import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What one load run measured (latencies in ms). */
export interface LoadResult {
  reqPerSec: number;
  total: number;
  p50: number;
  p90: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
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
  uniqueWidth?: number;
  seed?: number;
}

const CHILD = fileURLToPath(new URL('../load-child.ts', import.meta.url));

/** Runs autocannon in its own process and returns its summary; the child is always reaped. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const limit = setTimeout(() => child.kill('SIGKILL'), ((options.durationS ?? 60) + 60) * 1000);
    child.on('exit', (code) => {
      clearTimeout(limit);
      try {
        const parsed = JSON.parse(out.trim().split('\n').pop() ?? '{}') as LoadResult & {
          error?: string;
        };
        if (parsed.error || code !== 0)
          reject(new Error(parsed.error ?? `load generator exited ${code}`));
        else resolve(parsed);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}
