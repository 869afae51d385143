// Load generator process: runs autocannon with the options passed as JSON in argv[2] and prints
// one JSON summary line. Runs apart from the server so it never competes for its event loop.
import autocannon from 'autocannon';
import type { LoadOptions } from './lib/load.js';

const options = JSON.parse(process.argv[2] ?? '{}') as LoadOptions;
let counter = (options.seed ?? Date.now()) % 1_000_000_000;

function uniqueBody(width: number): string {
  const k = counter++;
  const row = new Array<number>(width);
  for (let i = 0; i < width; i++)
    row[i] = ((k * 7919 + i * 104_729) % 100_000) / 1000 + (k % 97) / 97;
  return `{"features":[${row.join(',')}]}`;
}

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
    process.stdout.write(
      JSON.stringify({
        reqPerSec: result.requests.average,
        total: result.requests.total,
        p50: result.latency.p50,
        p90: result.latency.p90,
        p99: result.latency.p99,
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
      }) + '\n',
    );
  },
);
process.once('SIGTERM', () => instance.stop());
