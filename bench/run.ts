// `npm run bench [-- --quick]`: brings up its own redis-server, API and worker processes, measures
// every target of issue 11 (requirement 3) in one run, prints the tables with each target's
// PASS/MISS and writes bench/results/<date>.json (and, on a full run, the SVG plots). Load comes
// from processes of its own; every process the bench starts is stopped by pid, also on failure.
// A scenario that fails is reported as such and makes the run exit 1; a missed target does not.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { ndjsonPipeline, ndjsonRows, rawInference } from './limits.js';
import { inferqEnv, sleep, startApi, startWorker, warmUp } from './lib/deployment.js';
import { merge, type Bench, type Measured, type Run } from './lib/measure.js';
import { lineChart } from './lib/plot.js';
import { freePort, Processes, startRedis } from './lib/procs.js';
import { costBetween, redisSnapshot } from './lib/redis-info.js';
import { RowNumbers } from './lib/rows.js';
import { round } from './lib/stats.js';
import { replicas, roundTrips, waiters } from './lib/topology.js';
import { cliBatch, type CliBatchScenario } from './batch-scenario.js';
import {
  batchTargets,
  cpuOf,
  formatBatchOnly,
  formatTable,
  judge,
  type Outcome,
  type Report,
} from './report.js';
import * as s from './scenarios.js';

const quick = process.argv.includes('--quick');
/** Only the CLI batch scenario (and the in-process pipeline beside it). */
const onlyBatch = process.argv.includes('--only-batch');
const onlyWaiters = process.argv.includes('--only-waiters');
/** Only the online scenarios (bare route, hits, misses at 1 and 64 connections). */
const onlyOnline = process.argv.includes('--only-online');
/**
 * Writes CPU profiles to bench/results/profiles/: of the CLI batch's API, worker and CLI, or with
 * `--only-online` of the API and worker under the online load.
 */
const profile = process.argv.includes('--profile');
const rowsArg = process.argv.indexOf('--rows');
/** Rows of the CLI batch (issue 14: 1,000,000; 100,000 in the quick run). */
const CLI_ROWS = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : quick ? 100_000 : 1_000_000;
/** Seconds of each load run; hit, miss and bare runs alternate `ROUNDS` times. */
const DURATION_S = quick ? 2 : 8;
const ROUNDS = quick ? 1 : 2;
/** Seconds of load that warm each path up (JIT, connection pools) before it is measured. */
const WARM_S = quick ? 1 : 2;
const BATCH_ROWS = quick ? 20_000 : 100_000;
const WAITERS = quick ? 2_000 : 10_000;
/** Whole-run limit: a service that hangs must not hang CI. */
const WATCHDOG_S = (quick ? 360 : 1500) + CLI_ROWS / 10_000;
const t0 = performance.now();
const log = (msg: string) =>
  process.stderr.write(`[bench ${Math.round((performance.now() - t0) / 1000)}s] ${msg}\n`);

async function startBare(procs: Processes, redisUrl: string): Promise<s.BareServer> {
  const port = await freePort();
  const script = fileURLToPath(new URL('./bare-server.ts', import.meta.url));
  const child = procs.track(
    spawn(process.execPath, ['--import', 'tsx', script, redisUrl, String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', () => resolve());
    child.once('exit', (code) => reject(new Error(`bare server exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/v1/models/breast-cancer/predict`, pid: child.pid };
}

async function attempt<T extends object>(
  label: string,
  run: () => Promise<T>,
): Promise<Outcome<T>> {
  log(label);
  try {
    return await run();
  } catch (err) {
    log(`${label} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

function source(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length;
    return `commit ${git('rev-parse', '--short', 'HEAD')}${dirty ? ` + ${dirty} uncommitted files in src/` : ''}`;
  } catch {
    return 'commit unknown';
  }
}

/** Alternates bare, hit and miss runs so that drift on a shared machine hits them alike. */
async function online(b: Bench, apiUrl: string, bare: s.BareServer, report: Report): Promise<void> {
  const [bareRuns, hit64, miss64, hit1, miss1]: [Run[], Run[], Run[], Run[], Run[]] = [
    [],
    [],
    [],
    [],
    [],
  ];
  log('online: warm-up of the bare route, hits and misses at 64 connections (not measured)');
  await s.bareRoute(b, bare, WARM_S);
  await s.cacheHit(b, apiUrl, 64, WARM_S);
  await s.cacheMiss(b, apiUrl, 64, WARM_S);
  for (let round = 1; round <= ROUNDS; round++) {
    log(`online round ${round}/${ROUNDS}: bare @64, hit @64, miss @64, hit @1, miss @1`);
    bareRuns.push(await s.bareRoute(b, bare, DURATION_S));
    hit64.push(await s.cacheHit(b, apiUrl, 64, DURATION_S));
    miss64.push(await s.cacheMiss(b, apiUrl, 64, DURATION_S));
    hit1.push(await s.cacheHit(b, apiUrl, 1, DURATION_S));
    miss1.push(await s.cacheMiss(b, apiUrl, 1, DURATION_S));
  }
  report.bare = merge(64, bareRuns);
  report.hit = [merge(1, hit1), merge(64, hit64)];
  report.miss = [merge(1, miss1), merge(64, miss64)];
  if (!quick && !onlyOnline) {
    log('online: miss @16 and @256 (latency against concurrency)');
    for (const c of [16, 256])
      report.miss.push(merge(c, [await s.cacheMiss(b, apiUrl, c, DURATION_S)]));
    report.miss.sort((x, y) => x.connections - y.connections);
  }
  if (onlyOnline) return;
  log('online: Server-Timing of sequential hits and misses');
  report.breakdown = await s.breakdowns(b, apiUrl, 50);
}

function writeResults(report: Report): void {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const stamp = report.date.slice(0, 19).replace(/[:T]/g, '-');
  const kind = onlyBatch ? '-batch' : quick ? '-quick' : '';
  writeFileSync(`${dir}${stamp}${kind}.json`, JSON.stringify(report, null, 2));
  if (quick || onlyBatch) return;
  writeFileSync(
    `${dir}latency-vs-concurrency.svg`,
    lineChart(
      (['p50', 'p90', 'p99'] as const).map((p) => ({
        name: `miss ${p}`,
        points: report.miss.map((m) => [m.connections, m[p]] as [number, number]),
      })),
      {
        title: 'Cache-miss latency against concurrency (breast-cancer)',
        xLabel: 'connections',
        yLabel: 'ms',
        logX: true,
      },
    ),
  );
  writeFileSync(
    `${dir}throughput-vs-batch.svg`,
    lineChart(
      [...new Set(report.raw.map((r) => r.model))].map((m) => ({
        name: m,
        points: report.raw
          .filter((r) => r.model === m)
          .map((r) => [r.batch, round(r.rowsPerSec / 1000, 1)] as [number, number]),
      })),
      {
        title: 'Raw onnxruntime-node throughput against batch size',
        xLabel: 'batch size',
        yLabel: 'k rows/s',
        logX: true,
      },
    ),
  );
}

function cliBatchOf(b: Bench): Promise<Outcome<CliBatchScenario>> {
  const profileDir = profile
    ? fileURLToPath(new URL('./results/profiles/', import.meta.url))
    : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  return attempt(`cli batch: ${CLI_ROWS} rows through inferq batch`, () =>
    cliBatch({ ...b, log, profileDir }, CLI_ROWS),
  );
}

/** `--only-batch`: the CLI batch scenario alone, with its own Redis. */
async function batchOnly(procs: Processes, report: Report): Promise<number> {
  const redisPort = await freePort();
  await startRedis(procs, redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const admin = new Redis(redisUrl);
  try {
    report.cliBatch = await cliBatchOf({ redisUrl, admin, procs, rows: new RowNumbers() });
  } finally {
    admin.disconnect();
  }
  report.loadAverage[1] = round(loadavg()[0] ?? NaN, 1);
  report.seconds = (performance.now() - t0) / 1000;
  report.targets = batchTargets(report);
  writeResults(report);
  process.stdout.write(formatBatchOnly(report));
  return 'error' in report.cliBatch ? 1 : 0;
}

/** `--only-waiters`: the long-poll scenario alone (WAITERS polls), with its own Redis. */
async function waitersOnly(procs: Processes): Promise<number> {
  const redisPort = await freePort();
  await startRedis(procs, redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const admin = new Redis(redisUrl);
  try {
    const b: Bench = { redisUrl, admin, procs, rows: new RowNumbers() };
    log(`waiters: ${WAITERS} long-polls`);
    const result = await waiters(b, inferqEnv(redisUrl, '{benchwait}'), WAITERS);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return result.answered === WAITERS ? 0 : 1;
  } finally {
    admin.disconnect();
  }
}

/** `--only-online`: the online scenarios alone, with their own Redis; prints the report. */
async function onlineOnly(procs: Processes, report: Report): Promise<number> {
  const redisPort = await freePort();
  await startRedis(procs, redisPort);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const admin = new Redis(redisUrl);
  const profileDir = profile
    ? fileURLToPath(new URL('./results/profiles/', import.meta.url))
    : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  try {
    const b: Bench = { redisUrl, admin, procs, rows: new RowNumbers() };
    const env = inferqEnv(redisUrl);
    const bare = await startBare(procs, redisUrl);
    const worker = startWorker(procs, env, nodeArgs);
    const api = await startApi(procs, env, nodeArgs);
    b.pids = { api: api.child.pid, worker: worker.pid };
    await warmUp(api.url, b.rows, 50);
    await online(b, api.url, bare, report);
    // SIGTERM lets both write their profiles.
    await procs.stop(api.child);
    await procs.stop(worker);
  } finally {
    admin.disconnect();
  }
  const line = (name: string, r: Measured) =>
    `${name.padEnd(10)} ${round(r.reqPerSec, 0)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms` +
    `  Redis ${round(r.redis.cpuUs, 1)} µs ${round(r.redis.commands, 2)} cmds` +
    `  CPU server / worker / load ${cpuOf(r)}\n`;
  const [hit1, hit64] = report.hit;
  const [miss1, miss64] = report.miss;
  process.stdout.write(
    line('bare @64', report.bare) +
      line('hit @1', hit1!) +
      line('hit @64', hit64!) +
      line('miss @1', miss1!) +
      line('miss @64', miss64!) +
      `hit/bare ${round(hit64!.reqPerSec / report.bare.reqPerSec, 3)}` +
      `  miss-hit p50 ${round(miss1!.p50 - hit1!.p50, 2)} ms` +
      `  miss/hit @64 ${round(miss64!.reqPerSec / hit64!.reqPerSec, 3)}\n`,
  );
  return 0;
}

async function main(): Promise<number> {
  const procs = new Processes();
  const stop = () => void procs.stopAll().then(() => process.exit(130));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  setTimeout(() => {
    log(`still running after ${WATCHDOG_S} s: stopping every process`);
    void procs.stopAll().then(() => process.exit(1));
  }, WATCHDOG_S * 1000).unref();
  const report = {
    date: new Date().toISOString(),
    quick,
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
    source: source(),
    loadAverage: [round(loadavg()[0] ?? NaN, 1), NaN],
  } as Report;
  if (onlyWaiters) {
    try {
      return await waitersOnly(procs);
    } finally {
      await procs.stopAll();
    }
  }
  if (onlyOnline) {
    try {
      return await onlineOnly(procs, report);
    } finally {
      await procs.stopAll();
    }
  }
  if (onlyBatch) {
    try {
      return await batchOnly(procs, report);
    } finally {
      await procs.stopAll();
    }
  }
  let admin: Redis | undefined;
  try {
    log('limits: raw inference');
    report.raw = await rawInference(
      ['breast-cancer', 'digits', 'digits-cnn'],
      [1, 8, 64, 256],
      quick ? 0.2 : 1,
    );
    log('limits: in-process NDJSON pipeline');
    const ndjson = ndjsonRows(BATCH_ROWS, 30);
    report.pipelineRowsPerSec = (await ndjsonPipeline('breast-cancer', ndjson)).rowsPerSec;

    const redisPort = await freePort();
    await startRedis(procs, redisPort);
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    admin = new Redis(redisUrl);
    const b: Bench = { redisUrl, admin, procs, rows: new RowNumbers() };
    const env = inferqEnv(redisUrl);
    const bare = await startBare(procs, redisUrl);
    const worker = startWorker(procs, env);
    const api = await startApi(procs, env);
    b.pids = { api: api.child.pid, worker: worker.pid };
    await warmUp(api.url, b.rows, 50);
    log('idle: Redis CPU of the idle deployment');
    const idle = await redisSnapshot(admin);
    await sleep(3000);
    report.redisIdleCpuMsPerS = costBetween(idle, await redisSnapshot(admin)).cpuUs / 3000;
    await online(b, api.url, bare, report);
    report.batch = await attempt(`batch: ${BATCH_ROWS} rows`, () =>
      s.batchEndToEnd(b, api.url, ndjson, BATCH_ROWS),
    );
    report.replicas = await attempt('replicas: lone misses with 1 API replica, then 3', () =>
      replicas(b, api.url, env, DURATION_S),
    );
    await procs.stop(api.child);
    await procs.stop(worker);
    report.roundTrips = await attempt(
      'round trips: lone miss through a proxy at D = 0 and 2 ms',
      () => roundTrips(b, redisPort, ROUNDS, DURATION_S),
    );
    report.waiters = await attempt(`waiters: ${WAITERS} long-polls`, () =>
      waiters(b, inferqEnv(redisUrl, '{benchwait}'), WAITERS),
    );
    report.cliBatch = await cliBatchOf(b);
    report.loadAverage[1] = round(loadavg()[0] ?? NaN, 1);
    report.seconds = (performance.now() - t0) / 1000;
    judge(report);
    writeResults(report);
    process.stdout.write(formatTable(report));
    const outcomes = [report.batch, report.replicas, report.roundTrips, report.waiters];
    const failures = [...outcomes, report.cliBatch].filter((o) => 'error' in o).length;
    return failures ? 1 : 0;
  } finally {
    admin?.disconnect();
    await procs.stopAll();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
