// `npm run bench [-- --quick]`: brings up its own Redis, API and worker processes, runs every
// scenario in one run, prints a table with each target's PASS/MISS, writes
// bench/results/<date>.json and SVG plots. Every process it starts is stopped by pid.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ndjsonPipeline, ndjsonRows, rawInference } from './limits.js';
import { runLoad } from './lib/load.js';
import { lineChart } from './lib/plot.js';
import { freePort, Processes, rssMb, startInferq, startRedis, waitHttp } from './lib/procs.js';
import { round } from './lib/stats.js';
import * as s from './scenarios.js';
import { formatTable, judge, type Report } from './report.js';

const quick = process.argv.includes('--quick');
const DURATION_S = quick ? 3 : 10;
const BATCH_ROWS = quick ? 20_000 : 100_000;
const WAITERS = quick ? 2_000 : 10_000;

async function bareRoute(procs: Processes, redisUrl: string): Promise<number> {
  const port = await freePort();
  const child = procs.track(
    spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./bare-server.ts', import.meta.url)),
        redisUrl,
        String(port),
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    ),
  );
  await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
  const load = await runLoad({
    url: `http://127.0.0.1:${port}/get`,
    method: 'POST',
    connections: 64,
    durationS: DURATION_S,
    body: '{}',
  });
  await procs.stop(child);
  return load.reqPerSec;
}

async function main(): Promise<void> {
  const procs = new Processes();
  const cleanup = () => void procs.stopAll().then(() => process.exit(130));
  process.once('SIGINT', cleanup);
  process.once('SIGTERM', cleanup);
  const report: Report = {
    date: new Date().toISOString(),
    quick,
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
  } as Report;
  try {
    const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
    log('limits: raw inference');
    report.raw = await rawInference(
      ['breast-cancer', 'digits', 'digits-cnn'],
      [1, 8, 64, 256],
      quick ? 0.3 : 1,
    );
    log('limits: in-process NDJSON pipeline');
    const ndjson = ndjsonRows(BATCH_ROWS, 30);
    report.pipelineRowsPerSec = (await ndjsonPipeline('breast-cancer', ndjson)).rowsPerSec;

    const redisPort = await freePort();
    await startRedis(procs, redisPort);
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    log('limits: bare Hono + one Redis GET');
    report.bareReqPerSec = await bareRoute(procs, redisUrl);

    const apiPort = await freePort();
    const env = {
      REDIS_URL: redisUrl,
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      QUEUE_PREFIX: '{bench}',
      WORKER_METRICS_PORT: '0',
      MAX_QUEUE_DEPTH: '0',
    };
    const api = startInferq(procs, 'api', env);
    const worker1 = startInferq(procs, 'worker', env);
    const target = { apiUrl: `http://127.0.0.1:${apiPort}`, redisUrl };
    await waitHttp(`${target.apiUrl}/health/ready`);
    await new Promise((r) => setTimeout(r, 1000));

    log('online: cache hit');
    report.hit = [
      await s.cacheHit(target, 1, DURATION_S),
      await s.cacheHit(target, 64, DURATION_S),
    ];
    log('online: cache miss');
    report.miss = [];
    for (const c of [1, 16, 64, 256])
      report.miss.push(await s.cacheMiss(target, 'breast-cancer', 30, c, DURATION_S));
    log('redis cost: online');
    report.redisPerMiss = await s.onlineRedisCost(target, quick ? 1000 : 5000);
    log(`batch: ${BATCH_ROWS} rows`);
    report.batch = await s
      .batchEndToEnd(target, ndjson, BATCH_ROWS)
      .catch((err: unknown) => ({ error: String(err) }));
    log('workers: 1 and 2 on digits');
    report.workers = [{ workers: 1, ...(await s.cacheMiss(target, 'digits', 64, 64, DURATION_S)) }];
    const worker2 = startInferq(procs, 'worker', env);
    await new Promise((r) => setTimeout(r, 3000));
    report.workers.push({
      workers: 2,
      ...(await s.cacheMiss(target, 'digits', 64, 64, DURATION_S)),
    });

    log(`waiters: ${WAITERS} long-polls`);
    await procs.stop(worker1);
    await procs.stop(worker2);
    report.waiters = await s.waiters(
      target,
      WAITERS,
      () => {
        startInferq(procs, 'worker', env);
        return Promise.resolve();
      },
      () => rssMb(api.pid),
    );
    judge(report);
    const dir = fileURLToPath(new URL('./results/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    const stamp = report.date.slice(0, 19).replace(/[:T]/g, '-');
    writeFileSync(`${dir}${stamp}${quick ? '-quick' : ''}.json`, JSON.stringify(report, null, 2));
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
    process.stdout.write(formatTable(report));
  } finally {
    await procs.stopAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
