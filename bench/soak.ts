// A soak of a whole deployment: its own redis-server, one API and one worker process, mixed
// traffic from two API keys at about 70% of the capacity measured first. Reports errors by
// kind, p99 latency per minute and API / worker RSS at start and end. Every process it starts
// is stopped by pid, also on failure and on Ctrl-C.
//
//   npm run soak -- --minutes 30 [--rps 120] [--calibrate-s 15] [--batch-every-s 30]
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { freePort, Processes, rssMb, startInferq, startRedis, waitHttp } from './lib/procs.js';
import { SOAK_KEYS, SoakMix } from './lib/soak-mix.js';
import { formatMinute, SoakRecorder } from './lib/soak-report.js';
import type { Outcome } from './lib/soak-traffic.js';

const MAX_BODY_BYTES = 256 * 1024;
const TARGET_SHARE = 0.7;
const CALIBRATE_CONNECTIONS = 48;
const MAX_IN_FLIGHT = 512;

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    rps: { type: 'string' },
    'calibrate-s': { type: 'string', default: '15' },
    'batch-every-s': { type: 'string', default: '30' },
    'batch-rows': { type: 'string', default: '2000' },
  },
});
const minutes = Number(args.minutes);
const batchEveryMs = Number(args['batch-every-s']) * 1000;
const batchRows = Number(args['batch-rows']);

let stopping = false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Operations per second the deployment completes with `connections` closed loops of the mix. */
async function calibrate(mix: SoakMix, seconds: number): Promise<number> {
  const until = Date.now() + seconds * 1000;
  let ok = 0;
  await Promise.all(
    Array.from({ length: CALIBRATE_CONNECTIONS }, async () => {
      while (Date.now() < until && !stopping) {
        for (const o of await mix.op()) if (!o.failure) ok++;
      }
    }),
  );
  return ok / seconds;
}

/** Starts operations at `rate` a second (open loop) until `durationMs` has passed. */
async function openLoop(
  mix: SoakMix,
  rate: number,
  durationMs: number,
  rec: SoakRecorder,
  start: number,
) {
  const running = new Set<Promise<void>>();
  let started = 0;
  let shed = 0;
  const record = (outcomes: Outcome[]) => outcomes.forEach((o) => rec.add(o));
  let nextBatch = start + batchEveryMs / 2;
  while (Date.now() - start < durationMs && !stopping) {
    const due = Math.floor((rate * (Date.now() - start)) / 1000) - started;
    for (let i = 0; i < due; i++, started++) {
      // Beyond this many in flight the deployment is not keeping up: count, do not pile on.
      if (running.size >= MAX_IN_FLIGHT) {
        shed++;
        continue;
      }
      const p: Promise<void> = mix
        .op()
        .then(record)
        .finally(() => running.delete(p));
      running.add(p);
    }
    if (Date.now() >= nextBatch) {
      nextBatch += batchEveryMs;
      const p: Promise<void> = mix
        .batch(batchRows)
        .then((o) => rec.add(o))
        .finally(() => running.delete(p));
      running.add(p);
    }
    await sleep(10);
  }
  await Promise.all(running);
  return { started, shed };
}

async function rssOf(api: ChildProcess, worker: ChildProcess) {
  return { apiMb: Math.round(await rssMb(api.pid)), workerMb: Math.round(await rssMb(worker.pid)) };
}

async function main(procs: Processes): Promise<number> {
  const redisPort = await freePort();
  await startRedis(procs, redisPort);
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    PORT: String(port),
    HOST: '127.0.0.1',
    API_KEYS: SOAK_KEYS.join(','),
    MODEL_DIR: 'models',
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    WORKER_METRICS_PORT: '0',
  };
  const api = startInferq(procs, 'api', env);
  const worker = startInferq(procs, 'worker', env);
  await waitHttp(`${baseUrl}/health/ready`);
  const mix = new SoakMix({ baseUrl, oversizeBytes: MAX_BODY_BYTES + 50_000 });
  try {
    await mix.warm();
    const capacity = await calibrate(mix, Number(args['calibrate-s']));
    const rate = args.rps ? Number(args.rps) : Math.max(1, Math.round(capacity * TARGET_SHARE));
    console.log(
      `soak: ${minutes} min at ${rate} ops/s (${args.rps ? 'given' : `${Math.round(TARGET_SHARE * 100)}% of`} ` +
        `the ${Math.round(capacity)} ops/s measured in ${args['calibrate-s']} s with ${CALIBRATE_CONNECTIONS} closed loops); ` +
        `mix: 35% cache hits, 30% misses, 10% async jobs (+ result), 15% WebSocket, 10% hostile; ` +
        `a ${batchRows}-row NDJSON batch every ${batchEveryMs / 1000} s; keys ${SOAK_KEYS.join(', ')}`,
    );
    const rssStart = await rssOf(api, worker);
    let rssMax = { ...rssStart };
    const startedAt = Date.now();
    const rec = new SoakRecorder(startedAt);
    let printed = 0;
    const ticker = setInterval(() => {
      const done = Math.floor((Date.now() - startedAt) / 60_000);
      for (; printed < done; printed++) console.log(formatMinute(rec.minuteRow(printed)));
      void rssOf(api, worker).then((r) => {
        rssMax = {
          apiMb: Math.max(rssMax.apiMb, r.apiMb),
          workerMb: Math.max(rssMax.workerMb, r.workerMb),
        };
      });
    }, 5_000);
    const { started, shed } = await openLoop(mix, rate, minutes * 60_000, rec, startedAt);
    clearInterval(ticker);
    const rssEnd = await rssOf(api, worker);
    const rows = rec.rows();
    for (; printed < rows.length; printed++) console.log(formatMinute(rows[printed]!));
    const errors = rec.errors();
    const kinds = rec.kinds();
    const total = Object.values(errors.byFailure).reduce((a, b) => a + b, 0);
    console.log(`operations by kind: ${JSON.stringify(kinds)}`);
    console.log(
      `errors: ${total} (${JSON.stringify(errors.byFailure)}) ${JSON.stringify(errors.byDetail)}`,
    );
    console.log(`shed by the client (over ${MAX_IN_FLIGHT} in flight): ${shed} of ${started}`);
    console.log(
      `RSS MB: api ${rssStart.apiMb} -> ${rssEnd.apiMb} (max ${rssMax.apiMb}), ` +
        `worker ${rssStart.workerMb} -> ${rssEnd.workerMb} (max ${rssMax.workerMb})`,
    );
    mkdirSync('bench/results', { recursive: true });
    const file = `bench/results/soak-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}.json`;
    const report = {
      minutes,
      rate,
      capacity,
      rows,
      errors,
      kinds,
      shed,
      started,
      rssStart,
      rssEnd,
      rssMax,
    };
    writeFileSync(file, JSON.stringify(report, null, 2));
    console.log(`written to ${file}`);
    return total === 0 && shed === 0 ? 0 : 1;
  } finally {
    mix.close();
  }
}

const procs = new Processes();
const onSignal = () => {
  // First Ctrl-C: finish the minute's report and stop cleanly; second: stop now.
  if (stopping) void procs.stopAll().finally(() => process.exit(130));
  stopping = true;
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
void main(procs)
  .catch((err: unknown) => {
    console.error(err);
    return 1;
  })
  .then(async (code) => {
    await procs.stopAll();
    process.exit(code);
  });
