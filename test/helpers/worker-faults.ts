import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Redis } from 'ioredis';
import { exited } from '../../src/cli/children.js';

/** The BullMQ fields of a job hash that tell who ran it, how often, and when it ended. */
export interface HeldJob {
  id: string;
  processedBy?: string;
  attemptsStarted: number;
  stalledCount: number;
  processedOn?: number;
  finishedOn?: number;
}

async function readJobs(
  redis: Redis,
  prefix: string,
  queue: string,
  ids: string[],
): Promise<HeldJob[]> {
  const pipeline = redis.pipeline();
  for (const id of ids)
    pipeline.hmget(`${prefix}:${queue}:${id}`, 'pb', 'ats', 'stc', 'processedOn', 'finishedOn');
  const replies = (await pipeline.exec()) ?? [];
  return ids.map((id, i) => {
    const [pb, ats, stc, processedOn, finishedOn] = (replies[i]?.[1] ?? []) as (string | null)[];
    return {
      id,
      ...(pb ? { processedBy: pb } : {}),
      attemptsStarted: Number(ats ?? 0),
      stalledCount: Number(stc ?? 0),
      ...(processedOn ? { processedOn: Number(processedOn) } : {}),
      ...(finishedOn ? { finishedOn: Number(finishedOn) } : {}),
    };
  });
}

/** Jobs of `queue` in the active list that worker `name` holds (BullMQ `processedBy`). */
export async function activeJobsOf(
  redis: Redis,
  prefix: string,
  queue: string,
  name: string,
): Promise<string[]> {
  const active = await redis.lrange(`${prefix}:${queue}:active`, 0, -1);
  const jobs = await readJobs(redis, prefix, queue, active);
  return jobs.filter((j) => j.processedBy === name && j.finishedOn === undefined).map((j) => j.id);
}

/**
 * Online jobs worker `name` holds: those in the active list it runs (BullMQ, or the fast lane's
 * claimed ones) and those still in its fast-lane transit lists (taken, not claimed: see
 * src/shared/fast-lane.ts).
 */
export async function heldOnlineJobs(
  redis: Redis,
  prefix: string,
  queue: string,
  name: string,
): Promise<{ active: string[]; transit: string[] }> {
  const lists = await redis.keys(`${prefix}:${queue}:fast-transit:${name}:*`);
  const elements = (await Promise.all(lists.map((k) => redis.lrange(k, 0, -1)))).flat();
  return {
    active: await activeJobsOf(redis, prefix, queue, name),
    transit: elements.map((e) => e.slice(0, e.indexOf('|'))),
  };
}

/** The `data` of each given job of `queue`, parsed (undefined where the job is gone). */
export async function jobData<T>(
  redis: Redis,
  prefix: string,
  queue: string,
  ids: string[],
): Promise<(T | undefined)[]> {
  const raw = await Promise.all(ids.map((id) => redis.hget(`${prefix}:${queue}:${id}`, 'data')));
  return raw.map((r) => (r ? (JSON.parse(r) as T) : undefined));
}

/** The audit fields of the given jobs of `queue`. */
export function jobsOf(
  redis: Redis,
  prefix: string,
  queue: string,
  ids: string[],
): Promise<HeldJob[]> {
  return ids.length === 0 ? Promise.resolve([]) : readJobs(redis, prefix, queue, ids);
}

/** Every job id in the completed and failed sets of `queue`. */
export async function finishedJobIds(
  redis: Redis,
  prefix: string,
  queue: string,
): Promise<{ completed: string[]; failed: string[] }> {
  const [completed, failed] = await Promise.all([
    redis.zrange(`${prefix}:${queue}:completed`, 0, -1),
    redis.zrange(`${prefix}:${queue}:failed`, 0, -1),
  ]);
  return { completed, failed };
}

/** A busy-loop process pinned to one CPU; it exits by itself when its parent dies. */
export function startBurner(cpu: number, nice = 19): ChildProcess {
  // Checks its parent every 200 ms of spinning, so an aborted test leaves no spinner behind.
  const code =
    'const p=process.ppid;for(;;){const t=Date.now()+200;while(Date.now()<t){}if(process.ppid!==p)process.exit(0)}';
  return spawn(
    'nice',
    ['-n', String(nice), 'taskset', '-c', String(cpu), process.execPath, '-e', code],
    {
      stdio: 'ignore',
    },
  );
}

/** Stops burners by pid and waits for them to be gone. */
export async function stopBurners(burners: ChildProcess[]): Promise<void> {
  await Promise.all(
    burners.map(async (b) => {
      if (b.exitCode !== null || b.signalCode !== null) return;
      const gone = exited(b);
      b.kill('SIGKILL');
      await gone;
    }),
  );
}

/** Pins every thread of process `pid` to `cpu` and gives each the nice value `nice`. */
export function pinAndNice(pid: number, cpu: number, nice = 19): void {
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], {
    encoding: 'utf8',
  });
  if (pinned.status !== 0) throw new Error(`taskset failed: ${pinned.stderr}`);
  // Linux nice values are per thread: renice each one (threads started later inherit it).
  const tids = readdirSync(`/proc/${pid}/task`);
  const niced = spawnSync('renice', ['-n', String(nice), '-p', ...tids], { encoding: 'utf8' });
  if (niced.status !== 0) throw new Error(`renice failed: ${niced.stderr}`);
}

/** Pins every thread of process `pid` to every CPU but `cpu` (no-op on a one-CPU machine). */
export function pinOthers(pid: number, cpu: number): void {
  const others = cpus()
    .map((_, i) => i)
    .filter((i) => i !== cpu);
  if (others.length === 0) return;
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', others.join(','), String(pid)], {
    encoding: 'utf8',
  });
  if (pinned.status !== 0) throw new Error(`taskset failed: ${pinned.stderr}`);
}

/** Nanoseconds the threads of `pid` ran on a CPU and waited for one (`/proc/<pid>/task/<tid>/schedstat`). */
export function schedTimes(pid: number): { runNs: number; waitNs: number } {
  let runNs = 0;
  let waitNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      runNs += Number(run);
      waitNs += Number(wait);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return { runNs, waitNs };
}
