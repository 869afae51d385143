// `npx tsx bench/redis-cost.ts [--quick]`: Redis work per prediction on a private redis-server.
// An in-process API (app.request, no HTTP) and one real `inferq worker` process share it.
//  - Commands per prediction (online cache miss, online cache hit, batch row), split into
//    round trips (commands clients send, EVALSHA counted once) and commands run inside Lua
//    scripts, from MONITOR; background commands of an idle deployment are subtracted.
//  - Throughput of the one worker, Redis CPU (INFO cpu, every thread) and commands (INFO
//    commandstats, those inside scripts included) per prediction, without MONITOR.
// `npm run bench` measures the same per-prediction figures against issue 11's targets.
// Every process it starts is stopped by pid. Numbers vary ~2-3x on a shared 2-core machine.
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { buildApi, type ApiHandle } from '../src/api/server.js';
import { loadConfig } from '../src/shared/config.js';
import { createLogger } from '../src/shared/logger.js';
import { PREDICT_JOB } from '../src/shared/jobs.js';
import { waitForReady } from '../src/shared/redis.js';
import { freePort, Processes, startInferq, startRedis } from './lib/procs.js';
import { uniqueRow } from './lib/rows.js';
import { costBetween, perUnit, redisSnapshot, type RedisCost } from './lib/redis-info.js';
import { round } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const ONLINE = quick ? 300 : 1000;
const BATCH_ROWS = quick ? 2000 : 10_000;
const THROUGHPUT = quick ? 1000 : 5000;
const THROUGHPUT_BATCH = quick ? 10_000 : 50_000;

/** A breast-cancer row unique to `n` (and to this run's `salt`), also in float32. */
const row = (salt: number, n: number) => uniqueRow(salt * 1_000_000 + n, 30);

interface Counts {
  roundTrips: number;
  inScripts: number;
  seconds: number;
  top: Map<string, number>;
  lua: Map<string, number>;
}

async function monitored(admin: Redis, run: () => Promise<void>): Promise<Counts> {
  const monitor = await admin.monitor();
  const top = new Map<string, number>();
  const lua = new Map<string, number>();
  let roundTrips = 0;
  let inScripts = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const name = String(args[0] ?? '').toLowerCase();
    if (source === 'lua') {
      inScripts++;
      lua.set(name, (lua.get(name) ?? 0) + 1);
    } else if (name !== 'monitor') {
      roundTrips++;
      top.set(name, (top.get(name) ?? 0) + 1);
    }
  });
  const started = performance.now();
  await run();
  // Cache writes and event fan-out trail the last answer by a few milliseconds.
  await new Promise((r) => setTimeout(r, 300));
  const seconds = (performance.now() - started) / 1000;
  monitor.disconnect();
  return { roundTrips, inScripts, seconds, top, lua };
}

function topOf(counts: Map<string, number>, units: number): string {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([k, v]) => `${k} ${round(v / units, 3)}`)
    .join(', ');
}

async function inParallel(count: number, concurrency: number, one: (n: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let n = next++; n < count; n = next++) await one(n);
    }),
  );
}

function predicts(api: ApiHandle, salt: number, count: number, concurrency: number) {
  return inParallel(count, concurrency, async (n) => {
    const res = await api.app.request('/v1/models/breast-cancer/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ features: row(salt, n) }),
    });
    if (res.status !== 200) throw new Error(`predict answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  });
}

async function batch(api: ApiHandle, salt: number, rows: number): Promise<void> {
  const body = Array.from({ length: rows }, (_, n) => JSON.stringify({ features: row(salt, n) }));
  const posted = await api.app.request('/v1/batches?model=breast-cancer', {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: body.join('\n'),
  });
  const { id } = (await posted.json()) as { id: string };
  for (;;) {
    const view = (await (await api.app.request(`/v1/batches/${id}?wait=30`)).json()) as {
      status: string;
    };
    if (view.status === 'completed') break;
  }
  await (await api.app.request(`/v1/batches/${id}/results`)).arrayBuffer();
}

// Jobs added straight to the queue: the worker's own ceiling, with no API in the way.
async function workerOnly(api: ApiHandle, salt: number, count: number): Promise<void> {
  const { queue, repository } = api.deps;
  const version = repository.resolve('breast-cancer').version;
  const before = (await queue.getJobCounts('completed')).completed ?? 0;
  for (let from = 0; from < count; from += 1000) {
    const size = Math.min(1000, count - from);
    await queue.addBulk(
      Array.from({ length: size }, (_, i) => ({
        name: PREDICT_JOB,
        data: {
          model: 'breast-cancer',
          version,
          rows: 1,
          values: row(salt, from + i),
          format: 'task' as const,
          single: true,
        },
        opts: { removeOnComplete: { count: 1_000_000 } },
      })),
    );
  }
  while (((await queue.getJobCounts('completed')).completed ?? 0) < before + count) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function main(): Promise<void> {
  const procs = new Processes();
  let api: ApiHandle | undefined;
  try {
    const port = await freePort();
    await startRedis(procs, port);
    const env = {
      REDIS_URL: `redis://127.0.0.1:${port}`,
      QUEUE_PREFIX: '{cost}',
      MODEL_DIR: 'models',
    };
    const config = loadConfig({
      ...env,
      LOG_LEVEL: 'silent',
      DEFAULT_WAIT_S: '30',
      MAX_WAIT_S: '60',
    });
    api = await buildApi(config, createLogger({ service: 'bench', level: 'silent' }));
    await waitForReady(api.deps.redis);
    startInferq(procs, 'worker', env);
    while ((await api.deps.queue.getWorkersCount()) < 1)
      await new Promise((r) => setTimeout(r, 200));
    const admin = new Redis(env.REDIS_URL);
    await predicts(api, 900, 200, 32);

    const idle = await monitored(admin, () => new Promise((r) => setTimeout(r, 3000)));
    const perS = (n: number) => n / idle.seconds;
    const net = (c: Counts, units: number) => ({
      roundTrips: round((c.roundTrips - perS(idle.roundTrips) * c.seconds) / units, 3),
      inScripts: round((c.inScripts - perS(idle.inScripts) * c.seconds) / units, 3),
      top: topOf(c.top, units),
      lua: topOf(c.lua, units),
    });
    const counts: [string, ReturnType<typeof net>][] = [];
    const count = async (label: string, units: number, run: () => Promise<void>) => {
      counts.push([label, net(await monitored(admin, run), units)]);
    };
    await count('online miss, 1 request at a time', ONLINE / 4, () =>
      predicts(api!, 100, ONLINE / 4, 1),
    );
    await count('online miss, 64 concurrent', ONLINE, () => predicts(api!, 110, ONLINE, 64));
    await count('online hit, 64 concurrent', ONLINE, () => predicts(api!, 110, ONLINE, 64));
    await count(`batch row (${BATCH_ROWS} rows)`, BATCH_ROWS, () => batch(api!, 200, BATCH_ROWS));

    const speeds: [string, { perS: number; cost: RedisCost }][] = [];
    const timed = async (label: string, units: number, run: () => Promise<void>) => {
      const before = await redisSnapshot(admin);
      const t0 = performance.now();
      await run();
      const s = (performance.now() - t0) / 1000;
      const cost = perUnit(costBetween(before, await redisSnapshot(admin)), units);
      speeds.push([label, { perS: Math.round(units / s), cost }]);
    };
    await timed('online miss, 256 concurrent', THROUGHPUT, () =>
      predicts(api!, 300, THROUGHPUT, 256),
    );
    await timed('online hit, 256 concurrent', THROUGHPUT, () =>
      predicts(api!, 300, THROUGHPUT, 256),
    );
    await timed('jobs added in bulk (no API, no cache)', THROUGHPUT, () =>
      workerOnly(api!, 500, THROUGHPUT),
    );
    await timed(`batch rows (${THROUGHPUT_BATCH} rows)`, THROUGHPUT_BATCH, () =>
      batch(api!, 400, THROUGHPUT_BATCH),
    );
    admin.disconnect();

    const load = loadavg()
      .map((l) => round(l, 1))
      .join(' ');
    console.log(`Redis work per prediction (${quick ? 'quick' : 'full'} run, load ${load})`);
    console.log(
      `idle background subtracted: ${round(perS(idle.roundTrips))} round trips/s, ` +
        `${round(perS(idle.inScripts))} Lua commands/s\n`,
    );
    console.log('| per prediction | round trips | inside Lua | top round trips |');
    for (const [label, c] of counts)
      console.log(`| ${label} | ${c.roundTrips} | ${c.inScripts} | ${c.top} |`);
    console.log(
      '\n| one worker process | predictions/s | Redis CPU µs per prediction | commands (INFO commandstats) | scripts |',
    );
    for (const [label, t] of speeds)
      console.log(
        `| ${label} | ${t.perS} | ${round(t.cost.cpuUs)} | ${round(t.cost.commands)} | ${round(t.cost.scripts)} |`,
      );
    console.log('');
    for (const [label, c] of counts) console.log(`inside Lua, ${label}: ${c.lua}`);
  } finally {
    await api?.close();
    await procs.stopAll();
  }
}

await main();
