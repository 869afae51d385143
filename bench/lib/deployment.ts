import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { exited } from '../../src/cli/children.js';
import { freePort, type Processes, startInferq, waitHttp } from './procs.js';
import { type RowNumbers, uniqueRow } from './rows.js';

/** One `inferq api` process. */
export interface ApiProcess {
  url: string;
  child: ChildProcess;
}

/** The environment every inferq process of the bench gets, pointed at `redisUrl`. */
export function inferqEnv(redisUrl: string, prefix = '{bench}'): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    HOST: '127.0.0.1',
    QUEUE_PREFIX: prefix,
    WORKER_METRICS_PORT: '0',
    MAX_QUEUE_DEPTH: '0',
    // Whatever the calling shell exports, the bench measures an open, unlimited service.
    API_KEYS: '',
    RATE_LIMIT_RPS: '0',
  };
}

/** Starts `inferq api` on a free port and waits until it is ready; stops it if it never is. */
export async function startApi(
  procs: Processes,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<ApiProcess> {
  const port = await freePort();
  const child = startInferq(procs, 'api', { ...env, PORT: String(port) }, nodeArgs);
  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([
      waitHttp(`${url}/health/ready`),
      exited(child).then((code) => {
        throw new Error(`inferq api exited (${code}) before it was ready`);
      }),
    ]);
  } catch (err) {
    await procs.stop(child);
    throw err;
  }
  return { url, child };
}

/** Starts `inferq worker` (ready once warmUp has answered through it). */
export function startWorker(
  procs: Processes,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): ChildProcess {
  return startInferq(procs, 'worker', env, nodeArgs);
}

/**
 * Sends `n` sequential cache misses and waits for each answer: proves API, queue and worker
 * work end to end and warms their code paths before anything is measured.
 */
export async function warmUp(apiUrl: string, rows: RowNumbers, n = 30): Promise<void> {
  const first = rows.take(n);
  const deadline = Date.now() + 60_000;
  for (let i = 0; i < n; i++) {
    for (;;) {
      const res = await fetch(`${apiUrl}/v1/models/breast-cancer/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ features: uniqueRow(first + i, 30) }),
      }).catch(() => undefined);
      const status = res?.status;
      await res?.arrayBuffer();
      if (status === 200) break;
      if (Date.now() > deadline) throw new Error(`warm-up: ${apiUrl} answered ${status}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Resident and peak resident memory of a process, MB (Linux /proc). */
export async function memoryMb(pid: number | undefined): Promise<{ rss: number; peak: number }> {
  if (!pid) return { rss: NaN, peak: NaN };
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** CPU time a process has used, seconds (Linux /proc, user + system). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU time of the whole machine so far, seconds summed over its cores (Linux /proc/stat). */
export async function machineCpu(): Promise<{ busyS: number; totalS: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0] ?? '';
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  // idle and iowait
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busyS: (total - idle) / 100, totalS: total / 100 };
}

/**
 * Waits until a process has used under 5% of a core for half a second (it has read and handled
 * what was sent to it), at least `minMs` and at most `maxMs`.
 */
export async function waitIdle(
  pid: number | undefined,
  minMs = 1000,
  maxMs = 20_000,
): Promise<void> {
  if (!pid) return;
  const started = Date.now();
  await sleep(minMs);
  for (let last = await cpuSeconds(pid); Date.now() - started < maxMs;) {
    await sleep(500);
    const now = await cpuSeconds(pid);
    if (now - last < 0.025) return;
    last = now;
  }
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
