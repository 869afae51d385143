import { Worker } from 'node:worker_threads';

/** Latencies of GET /health/live seen by a probe while something else ran, milliseconds. */
export interface ProbeReport {
  count: number;
  failures: number;
  p50: number;
  p99: number;
  max: number;
}

/** A running probe. */
export interface HealthProbe {
  /** Stops probing; resolves with what it saw. */
  stop(): Promise<ProbeReport>;
}

// Plain JavaScript, run in a worker thread: its own event loop, so the latencies it sees are
// the server's, not those of the test's busy main thread.
const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const latencies = [];
let failures = 0;
let running = true;
parentPort.on('message', () => { running = false; });
function once() {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = http.get(workerData.url, { agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) latencies.push(performance.now() - started);
        else failures++;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => { failures++; resolve(); });
  });
}
(async () => {
  while (running) {
    await once();
    await new Promise((r) => setTimeout(r, workerData.intervalMs));
  }
  agent.destroy();
  parentPort.postMessage({ latencies, failures });
})();
`;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Polls `url` (a /health/live) every `intervalMs` from a worker thread until stopped. */
export function startHealthProbe(url: string, intervalMs = 20): HealthProbe {
  const worker = new Worker(PROBE_SOURCE, { eval: true, workerData: { url, intervalMs } });
  const result = new Promise<{ latencies: number[]; failures: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    stop: async () => {
      worker.postMessage('stop');
      const { latencies, failures } = await result;
      await worker.terminate();
      const sorted = [...latencies].sort((a, b) => a - b);
      return {
        count: sorted.length,
        failures,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted[sorted.length - 1] ?? NaN,
      };
    },
  };
}
