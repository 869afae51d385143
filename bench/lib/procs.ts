import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INFERQ_BIN, spawnInferq, stopChild } from '../../src/cli/children.js';

/** Every process the benchmark started, stopped by pid at the end whatever happens. */
export class Processes {
  private readonly children: ChildProcess[] = [];

  /** Tracks a child so that stopAll stops it. */
  track(child: ChildProcess): ChildProcess {
    this.children.push(child);
    return child;
  }

  /** Stops one child by pid. */
  async stop(child: ChildProcess, graceMs = 15_000): Promise<void> {
    await stopChild(child, graceMs);
  }

  /** Stops every child, newest first. */
  async stopAll(): Promise<void> {
    for (const child of [...this.children].reverse()) await stopChild(child, 15_000);
  }
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts a private redis-server (no persistence) and waits until it answers. */
export async function startRedis(procs: Processes, port: number): Promise<ChildProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'inferq-bench-redis-'));
  const child = procs.track(
    spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      {
        stdio: 'ignore',
      },
    ),
  );
  const { Redis } = await import('ioredis');
  const redis = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  for (let i = 0; i < 100; i++) {
    try {
      if (redis.status !== 'ready') await redis.connect();
      await redis.ping();
      redis.disconnect();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`redis-server did not start on port ${port}`);
}

/**
 * Starts `inferq <args>` like spawnInferq, with `nodeArgs` (e.g. `--cpu-prof`, which
 * NODE_OPTIONS does not take) before the script.
 */
export function spawnInferqWith(
  nodeArgs: string[],
  args: string[],
  options: SpawnOptions,
): ChildProcess {
  if (nodeArgs.length === 0) return spawnInferq(args, options);
  return spawn(
    process.execPath,
    [...nodeArgs, INFERQ_BIN, ...args, `--exit-with-parent=${process.pid}`],
    options,
  );
}

/** Starts `inferq <role>` with the given environment (and node flags). */
export function startInferq(
  procs: Processes,
  role: 'api' | 'worker',
  env: Record<string, string>,
  nodeArgs: string[] = [],
): ChildProcess {
  return procs.track(
    spawnInferqWith(nodeArgs, [role], {
      env: { ...process.env, LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
}

/** Waits until GET url answers 200. */
export async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** Resident memory of a process in MB (Linux /proc). */
export async function rssMb(pid: number | undefined): Promise<number> {
  if (!pid) return NaN;
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}
