import type { Agent } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeKeys, uniquePrefix } from '../helpers/env.js';
import { startHealthProbe } from '../helpers/health-probe.js';
import {
  DroppedError,
  keepAliveAgent,
  send,
  type RawRequest,
  type RawResponse,
} from '../helpers/http-client.js';
import { startApiProcess, stopAll, type ApiProcess } from '../helpers/processes.js';
import { parseExposition } from '../helpers/prometheus.js';
import { fuzzCases, type FuzzLimits } from './fuzz-cases.js';

// Issue 10, "Done when": a seeded fuzz of 5 x 1,000 hostile requests from a keep-alive client,
// 16 at a time, shows 0 dropped connections; Requirement 3: under that mix the API's event-loop
// delay p99 stays under 50 ms and /health/live answers within 100 ms.

const SEEDS = [1, 2, 3, 4, 5];
// prom-client samples the delay every 10 ms: an idle loop on a quiet machine shows ~10-12 ms.
const QUIET_P99_MS = 20;
// ... and an idle /health/live answers within a few milliseconds.
const QUIET_HEALTH_MS = 50;
const PER_ROUND = 1000;
const CONCURRENCY = 16;
const LIMITS: FuzzLimits = {
  maxBodyBytes: 256 * 1024,
  maxBatchBytes: 512 * 1024,
  maxBatchRows: 2000,
  maxLineBytes: 16_384,
};

/** Why an answer breaks the contract, or undefined when it keeps it. */
function violation(r: RawRequest, res: RawResponse): string | undefined {
  if (res.status >= 500) return `status ${res.status}: ${res.body.slice(0, 200)}`;
  // Node's own parser refuses oversized headers before any route: no body of ours.
  if (res.status < 400 || r.method === 'HEAD' || res.status === 431) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    return `status ${res.status} with a non-JSON body: ${res.body.slice(0, 200)}`;
  }
  const error = (body as { error?: unknown }).error;
  if (r.path.startsWith('/v2') && typeof error === 'string' && error.length > 0) return undefined;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && typeof message === 'string') return undefined;
  return `status ${res.status} outside the error envelope: ${res.body.slice(0, 200)}`;
}

/** The API's event-loop delay since the previous scrape (prom-client resets it per scrape). */
async function eventLoopDelay(api: ApiProcess): Promise<{ p99Ms: number; maxMs: number }> {
  const { samples } = parseExposition(await (await fetch(`${api.url}/metrics`)).text());
  const value = (name: string) => (samples.find((s) => s.name === name)?.value ?? NaN) * 1000;
  return {
    p99Ms: value('nodejs_eventloop_lag_p99_seconds'),
    maxMs: value('nodejs_eventloop_lag_max_seconds'),
  };
}

const label = (r: RawRequest) => `${r.method} ${r.path.slice(0, 80)}`;

/** What a fuzz saw. */
interface Tally {
  drops: string[];
  problems: string[];
  statuses: Map<number, number>;
  /** Answers that came on a connection an earlier request had used. */
  reused: number;
}

describe('seeded fuzz: 5 x 1,000 hostile requests, 16 at a time, keep-alive (real API process)', () => {
  const prefix = uniquePrefix('fuzz');
  let api: ApiProcess;

  beforeAll(async () => {
    api = await startApiProcess({
      QUEUE_PREFIX: prefix,
      API_KEYS: 'keyA,keyB',
      MAX_BODY_BYTES: String(LIMITS.maxBodyBytes),
      MAX_BATCH_BYTES: String(LIMITS.maxBatchBytes),
      MAX_BATCH_ROWS: String(LIMITS.maxBatchRows),
      MAX_LINE_BYTES: String(LIMITS.maxLineBytes),
      // No worker: valid predictions answer 202 at once instead of waiting.
      DEFAULT_WAIT_S: '0',
      MAX_WAIT_S: '0',
      MODEL_RESCAN_MS: '0',
    });
  });

  afterAll(async () => {
    await stopAll([api]);
    await removeKeys(prefix);
  });

  /** Sends one round's requests from 16 loops over one keep-alive agent. */
  async function runRound(seed: number, agent: Agent, tally: Tally): Promise<void> {
    const cases = fuzzCases(seed, PER_ROUND, LIMITS);
    const loop = async () => {
      for (let r = cases.shift(); r; r = cases.shift()) {
        try {
          const res = await send(agent, api.url, r);
          if (res.reused) tally.reused++;
          tally.statuses.set(res.status, (tally.statuses.get(res.status) ?? 0) + 1);
          const problem = violation(r, res);
          if (problem) tally.problems.push(`seed ${seed}: ${label(r)} -> ${problem}`);
        } catch (err) {
          if (!(err instanceof DroppedError)) throw err;
          tally.drops.push(`seed ${seed}: ${err.message} (reused socket: ${err.reused})`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  }

  it('drops no connection, answers no 5xx, keeps every error in the envelope and the event loop free', async () => {
    // The machine's own noise first: the same measurement on the idle API.
    await eventLoopDelay(api);
    const idleProbe = startHealthProbe(`${api.url}/health/live`, 20);
    await new Promise((r) => setTimeout(r, 2000));
    const idleHealth = await idleProbe.stop();
    const idle = await eventLoopDelay(api);
    const tally: Tally = { drops: [], problems: [], statuses: new Map(), reused: 0 };
    const agent = keepAliveAgent(CONCURRENCY);
    const probe = startHealthProbe(`${api.url}/health/live`, 20);
    const started = performance.now();
    try {
      for (const seed of SEEDS) await runRound(seed, agent, tally);
    } finally {
      agent.destroy();
    }
    const fuzz = await eventLoopDelay(api);
    const health = await probe.stop();
    const statuses = Object.fromEntries([...tally.statuses].sort((a, b) => a[0] - b[0]));
    console.log(
      [
        `${SEEDS.length} x ${PER_ROUND} requests in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        `drops ${tally.drops.length}, 5xx/envelope problems ${tally.problems.length}, answers on reused sockets ${tally.reused}`,
        `statuses ${JSON.stringify(statuses)}`,
        `event-loop delay p99 ${fuzz.p99Ms.toFixed(1)} ms, max ${fuzz.maxMs.toFixed(0)} ms ` +
          `(idle before: p99 ${idle.p99Ms.toFixed(1)} ms, max ${idle.maxMs.toFixed(0)} ms)`,
        `/health/live during the fuzz: ${health.count} probes, p50 ${health.p50.toFixed(1)} ms, ` +
          `p99 ${health.p99.toFixed(1)} ms, max ${health.max.toFixed(1)} ms, failures ${health.failures} ` +
          `(idle before: p99 ${idleHealth.p99.toFixed(1)} ms, max ${idleHealth.max.toFixed(1)} ms)`,
      ].join('\n'),
    );
    expect(tally.drops).toEqual([]);
    expect(tally.problems.slice(0, 30)).toEqual([]);
    // A keep-alive client: answers to refused bodies close their connection, the rest reuse one.
    expect(tally.reused).toBeGreaterThan(SEEDS.length * PER_ROUND * 0.3);
    expect(health.failures).toBe(0);
    // Whatever the machine's load: no request held the loop for long (a 10 MB body of numbers
    // used to hold it for over a second, a blank-line upload for seconds).
    expect(fuzz.maxMs).toBeLessThan(500);
    // On a machine so busy that the idle API's timers are already late, the thresholds would
    // measure the machine, not the API: the figures above are still printed.
    if (idle.p99Ms > QUIET_P99_MS || idleHealth.max > QUIET_HEALTH_MS) {
      console.warn(
        `event-loop thresholds not judged: idle, the API's delay p99 was ${idle.p99Ms.toFixed(1)} ms ` +
          `and /health/live's slowest answer ${idleHealth.max.toFixed(1)} ms ` +
          `(load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores)`,
      );
      return;
    }
    expect(fuzz.p99Ms).toBeLessThan(50);
    // Seen from the client, an answer also waits for this busy test process and the OS: the
    // API's own stalls are bounded by the event-loop figures above.
    expect(health.p99).toBeLessThan(100);
    expect(health.max).toBeLessThan(250);
  }, 240_000);
});
