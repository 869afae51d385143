/**
 * `npm run bench:cluster`: a real local Redis Cluster (3 masters by default) behind 2 API and
 * 2 worker processes, and what each prediction costs every master (INFO cpu and commandstats
 * deltas), for lone misses, gathered misses, hits and a batch. Prints the capacity a master
 * gives and how many masters, worker and API processes a target rate needs; writes
 * bench/results/cluster-<time>.json. Every process it starts is stopped by pid at the end.
 *
 * Flags: --masters N (3), --apis N (2), --workers N (2), --seconds S (8), --batch-rows N (20000).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { costBetween, redisSnapshot, type RedisCost } from './lib/redis-info.js';
import {
  cpuSeconds,
  inferqEnv,
  sleep,
  startApi,
  startWorker,
  warmUp,
  type ApiProcess,
} from './lib/deployment.js';
import { runLoad } from './lib/load.js';
import { freePort, Processes } from './lib/procs.js';
import { RowNumbers, uniqueRow } from './lib/rows.js';

const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MASTERS = flag('masters', 3);
const APIS = flag('apis', 2);
const WORKERS = flag('workers', 2);
const SECONDS = flag('seconds', 8);
const BATCH_ROWS = flag('batch-rows', 20_000);
/** Share of a Redis core planned for, leaving headroom for peaks, failover and replication. */
const PLANNED_LOAD = 0.7;

/** What one scenario cost, per prediction. */
interface Cost {
  scenario: string;
  predictions: number;
  perSecond: number;
  /** Redis CPU over all masters, µs per prediction. */
  redisUs: number;
  /** The same less what the idle deployment costs in the same time: the prediction's own. */
  marginalUs: number;
  /** Each master's share of that CPU. */
  cpuShares: number[];
  /** Redis commands (inside scripts included) per prediction, all masters. */
  commands: number;
  commandShares: number[];
  /** CPU of the API and worker processes, µs per prediction. */
  apiUs: number;
  workerUs: number;
}

async function startCluster(procs: Processes): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < MASTERS; i++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'inferq-bench-cluster-'));
    procs.track(
      spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'].concat([
          '--dir',
          dir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
        ]),
        { stdio: 'ignore' },
      ),
    );
    ports.push(port);
  }
  await sleep(500);
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  const created = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (created.status !== 0) throw new Error(`redis-cli --cluster create: ${created.stdout}`);
  for (const port of ports) {
    const r = new Redis({ port, host: '127.0.0.1' });
    for (let i = 0; i < 100 && !/cluster_state:ok/.test(String(await r.cluster('INFO'))); i++)
      await sleep(100);
    r.disconnect();
  }
  return ports;
}

const share = (values: number[]) => {
  const total = values.reduce((a, b) => a + b, 0);
  return values.map((v) => (total > 0 ? v / total : 0));
};

async function main(): Promise<void> {
  const procs = new Processes();
  const rows = new RowNumbers(50_000_000);
  try {
    const ports = await startCluster(procs);
    const masters = ports.map((port) => new Redis({ port, host: '127.0.0.1' }));
    const env = {
      ...inferqEnv(`redis://127.0.0.1:${ports[0]}`),
      REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(','),
    };
    const apis: ApiProcess[] = [];
    for (let i = 0; i < APIS; i++) apis.push(await startApi(procs, env));
    const workers = Array.from({ length: WORKERS }, () => startWorker(procs, env));
    for (const api of apis) await warmUp(api.url, rows);
    const pids = (list: { pid?: number }[]) => list.map((c) => c.pid ?? 0);
    const cpuOf = async (list: number[]) =>
      (await Promise.all(list.map(cpuSeconds))).reduce((a, b) => a + b, 0);

    const measure = async (scenario: string, work: () => Promise<number>): Promise<Cost> => {
      await sleep(500);
      const before = await Promise.all(masters.map(redisSnapshot));
      const [apiBefore, workerBefore] = [
        await cpuOf(pids(apis.map((a) => a.child))),
        await cpuOf(pids(workers)),
      ];
      const started = performance.now();
      const predictions = await work();
      const seconds = (performance.now() - started) / 1000;
      await sleep(300);
      const after = await Promise.all(masters.map(redisSnapshot));
      const apiS = (await cpuOf(pids(apis.map((a) => a.child)))) - apiBefore;
      const workerS = (await cpuOf(pids(workers))) - workerBefore;
      const costs: RedisCost[] = after.map((a, i) => costBetween(before[i]!, a));
      const cpu = costs.map((c) => c.cpuUs);
      const commands = costs.map((c) => c.commands);
      return {
        scenario,
        predictions,
        perSecond: predictions / seconds,
        redisUs: cpu.reduce((a, b) => a + b, 0) / predictions,
        marginalUs: (cpu.reduce((a, b) => a + b, 0) - idleUsPerS * seconds) / predictions,
        cpuShares: share(cpu),
        commands: commands.reduce((a, b) => a + b, 0) / predictions,
        commandShares: share(commands),
        apiUs: (apiS * 1e6) / predictions,
        workerUs: (workerS * 1e6) / predictions,
      };
    };

    // What the deployment costs Redis while it does nothing: blocking reads and stalled checks
    // of every shard queue of every worker, queue-depth refreshes of every API.
    const idleBefore = await Promise.all(masters.map(redisSnapshot));
    await sleep(5000);
    const idle = (await Promise.all(masters.map(redisSnapshot))).map((a, i) =>
      costBetween(idleBefore[i]!, a),
    );
    const idleUsPerS = idle.reduce((n, c) => n + c.cpuUs, 0) / 5;
    const idleCommandsPerS = idle.reduce((n, c) => n + c.commands, 0) / 5;
    const predictUrl = (i: number) => `${apis[i % APIS]!.url}/v1/models/breast-cancer/predict`;
    const results: Cost[] = [];
    results.push(
      await measure('lone miss (1 connection)', async () => {
        const first = rows.take(400);
        for (let i = 0; i < 400; i++) {
          const res = await fetch(predictUrl(i), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ features: uniqueRow(first + i, 30) }),
          });
          if (res.status !== 200) throw new Error(`lone miss answered ${res.status}`);
          await res.arrayBuffer();
        }
        return 400;
      }),
    );
    const loadOn = (
      connections: number,
      body: (i: number) => Partial<Parameters<typeof runLoad>[0]>,
    ) =>
      Promise.all(
        apis.map((_, i) =>
          runLoad(
            {
              url: predictUrl(i),
              method: 'POST',
              connections: Math.ceil(connections / APIS),
              durationS: SECONDS,
              headers: { 'content-type': 'application/json' },
              ...body(i),
            },
            { track: (c) => procs.track(c) },
          ),
        ),
      );
    // The misses' inputs, per API; the hits then send the same inputs again, spread over the
    // cluster like real hits on many inputs (one hot input would load one master alone).
    const seeds = apis.map(() => rows.take());
    const sent = apis.map(() => 0);
    results.push(
      await measure('miss (64 connections)', () =>
        loadOn(64, (i) => ({ uniqueWidth: 30, seed: seeds[i] })).then((runs) => {
          runs.forEach((r, i) => (sent[i] = r.total));
          return runs.reduce((n, r) => n + r.ok, 0);
        }),
      ),
    );
    results.push(
      await measure('hit (64 connections)', () =>
        loadOn(64, (i) => ({ uniqueWidth: 30, seed: seeds[i], amount: sent[i] })).then((runs) =>
          runs.reduce((n, r) => n + r.ok, 0),
        ),
      ),
    );
    results.push(
      await measure(`batch of ${BATCH_ROWS} rows`, async () => {
        const first = rows.take(BATCH_ROWS);
        const body = Array.from({ length: BATCH_ROWS }, (_, i) =>
          JSON.stringify({ features: uniqueRow(first + i, 30) }),
        ).join('\n');
        const res = await fetch(`${apis[0]!.url}/v1/batches?model=breast-cancer`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson' },
          body,
        });
        const { id } = (await res.json()) as { id: string };
        const text = await (await fetch(`${apis[0]!.url}/v1/batches/${id}/results`)).text();
        const lines = text.trim().split('\n');
        if (lines.length !== BATCH_ROWS) throw new Error(`batch gave ${lines.length} lines`);
        return BATCH_ROWS;
      }),
    );
    for (const m of masters) m.disconnect();
    report(results, { usPerS: idleUsPerS, commandsPerS: idleCommandsPerS });
  } finally {
    await procs.stopAll();
  }
}

function report(results: Cost[], idle: { usPerS: number; commandsPerS: number }): void {
  const pct = (v: number[]) => v.map((s) => `${(s * 100).toFixed(0)}%`).join('/');
  console.log(`\n${MASTERS} masters, ${APIS} API and ${WORKERS} worker processes, one machine\n`);
  console.log(
    '| scenario | predictions/s | Redis CPU µs/prediction (all masters) | less idle cost | CPU share per master | commands/prediction | command share per master | API CPU µs | worker CPU µs |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(
      `| ${r.scenario} | ${r.perSecond.toFixed(0)} | ${r.redisUs.toFixed(1)} | ${r.marginalUs.toFixed(1)} | ${pct(r.cpuShares)} | ${r.commands.toFixed(1)} | ${pct(r.commandShares)} | ${r.apiUs.toFixed(0)} | ${r.workerUs.toFixed(0)} |`,
    );
  }
  console.log(
    `\nIdle deployment: ${idle.usPerS.toFixed(0)} µs of Redis CPU and ${idle.commandsPerS.toFixed(0)} commands per second, all masters`,
  );
  console.log(
    `\nCapacity at ${PLANNED_LOAD * 100}% of one Redis core per master, spread evenly (predictions/s):`,
  );
  console.log('| scenario | per master | masters for 10k/s | masters for 100k/s |');
  console.log('| --- | --- | --- | --- |');
  for (const r of results) {
    // The idle cost is paid once, not per prediction: capacity follows the marginal cost.
    const perMaster = (PLANNED_LOAD * 1e6) / Math.max(r.marginalUs, 1);
    console.log(
      `| ${r.scenario} | ${perMaster.toFixed(0)} | ${Math.ceil(10_000 / perMaster)} | ${Math.ceil(100_000 / perMaster)} |`,
    );
  }
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(
    file,
    JSON.stringify({ masters: MASTERS, apis: APIS, workers: WORKERS, idle, results }, null, 2),
  );
  console.log(`\nwritten to ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
