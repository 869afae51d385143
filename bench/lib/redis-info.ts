import type { Redis } from 'ioredis';

/** Counters of one Redis server at one moment (INFO cpu, stats and commandstats). */
export interface RedisSnapshot {
  /** used_cpu_user + used_cpu_sys, seconds (every thread of the server). */
  cpuS: number;
  /** used_cpu_user_main_thread + used_cpu_sys_main_thread, seconds. */
  mainCpuS: number;
  /** total_net_output_bytes. */
  outputBytes: number;
  /** Calls per command name; a command run inside a script counts under its own name too. */
  calls: Map<string, number>;
}

/** What Redis did between two snapshots. */
export interface RedisCost {
  /** CPU time of the server, microseconds. */
  cpuUs: number;
  /** Commands executed (INFO commandstats), those inside scripts included; INFO itself excluded. */
  commands: number;
  /** Script calls (EVALSHA, EVAL, FCALL). */
  scripts: number;
  /** Bytes Redis wrote to its clients. */
  outputBytes: number;
  /** Commands by name, most called first (at most 8). */
  top: Record<string, number>;
}

const SCRIPT_COMMANDS = new Set(['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'fcall_ro']);

/** Reads the counters Redis keeps since it started. */
export async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const info = String(await redis.call('INFO', 'cpu', 'stats', 'commandstats'));
  const field = (key: string) => Number(new RegExp(`^${key}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const calls = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] !== undefined && m[1] !== 'info') calls.set(m[1], Number(m[2]));
  }
  return {
    cpuS: field('used_cpu_user') + field('used_cpu_sys'),
    mainCpuS: field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread'),
    outputBytes: field('total_net_output_bytes'),
    calls,
  };
}

/** The work between two snapshots of the same server. */
export function costBetween(before: RedisSnapshot, after: RedisSnapshot): RedisCost {
  const delta = new Map<string, number>();
  for (const [name, n] of after.calls) {
    const d = n - (before.calls.get(name) ?? 0);
    if (d > 0) delta.set(name, d);
  }
  let commands = 0;
  let scripts = 0;
  for (const [name, n] of delta) {
    commands += n;
    if (SCRIPT_COMMANDS.has(name)) scripts += n;
  }
  const top = [...delta].sort((a, b) => b[1] - a[1]).slice(0, 8);
  return {
    cpuUs: (after.cpuS - before.cpuS) * 1e6,
    commands,
    scripts,
    outputBytes: after.outputBytes - before.outputBytes,
    top: Object.fromEntries(top),
  };
}

/** Sums costs measured over several runs. */
export function addCosts(costs: RedisCost[]): RedisCost {
  const top = new Map<string, number>();
  for (const c of costs)
    for (const [k, v] of Object.entries(c.top)) top.set(k, (top.get(k) ?? 0) + v);
  return {
    cpuUs: costs.reduce((s, c) => s + c.cpuUs, 0),
    commands: costs.reduce((s, c) => s + c.commands, 0),
    scripts: costs.reduce((s, c) => s + c.scripts, 0),
    outputBytes: costs.reduce((s, c) => s + c.outputBytes, 0),
    top: Object.fromEntries([...top].sort((a, b) => b[1] - a[1]).slice(0, 8)),
  };
}

/** A cost divided by the predictions (or rows) it served. */
export function perUnit(cost: RedisCost, units: number): RedisCost {
  const u = Math.max(units, 1);
  const r = (v: number) => Math.round((v / u) * 1000) / 1000;
  return {
    cpuUs: r(cost.cpuUs),
    commands: r(cost.commands),
    scripts: r(cost.scripts),
    outputBytes: r(cost.outputBytes),
    top: Object.fromEntries(Object.entries(cost.top).map(([k, v]) => [k, r(v)])),
  };
}
