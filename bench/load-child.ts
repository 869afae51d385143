// Load generator process: runs autocannon with the options passed as JSON in argv[2] and prints
// one JSON summary line. Runs apart from the server so it never competes for its event loop.
// It prints {"ready":true} and starts when its parent writes a line to stdin.
import autocannon from 'autocannon';
import { createInterface } from 'node:readline';
import type { LoadOptions } from './lib/load.js';
import { uniqueRow } from './lib/rows.js';
import { percentile } from './lib/stats.js';

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
let counter = options.seed ?? Date.now() % 1_000_000_000;

const uniqueBody = (width: number) => `{"features":[${uniqueRow(counter++, width).join(',')}]}`;

function start(): void {
  // The load generator's own CPU over its run: it shares the machine with what it measures.
  const cpuAtStart = process.cpuUsage();
  // autocannon's histogram keeps whole milliseconds; each response's own time is exact.
  const latencies: number[] = [];
  const instance = autocannon(
    {
      url: options.url,
      method: options.method,
      connections: options.connections,
      ...(options.amount ? { amount: options.amount } : { duration: options.durationS ?? 10 }),
      headers: { 'content-type': 'application/json', ...options.headers },
      body: options.body,
      requests: options.uniqueWidth
        ? [
            {
              method: options.method,
              setupRequest: (req) => ({ ...req, body: uniqueBody(options.uniqueWidth ?? 0) }),
            },
          ]
        : undefined,
    },
    (err, result) => {
      if (err) {
        process.stdout.write(JSON.stringify({ error: String(err) }) + '\n');
        process.exit(1);
      }
      const durationS = result.duration || options.durationS || 1;
      process.stdout.write(
        JSON.stringify({
          reqPerSec: latencies.length / durationS,
          cpuS: cpuTotalS(process.cpuUsage(cpuAtStart)),
          total: result.requests.total,
          ok: latencies.length,
          durationS,
          p50: percentile(latencies, 50),
          p90: percentile(latencies, 90),
          p99: percentile(latencies, 99),
          max: percentile(latencies, 100),
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          samples: options.samples ? latencies.map((l) => Math.round(l * 1000) / 1000) : undefined,
        }) + '\n',
      );
    },
  );
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
  });
  process.once('SIGTERM', () => instance.stop());
}

function cpuTotalS(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}

let started = false;
const lines = createInterface({ input: process.stdin });
lines.once('line', () => {
  started = true;
  start();
});
// A parent gone before it said "go" closes stdin: nothing to run.
lines.once('close', () => {
  if (!started) process.exit(1);
});
process.stdout.write('{"ready":true}\n');
