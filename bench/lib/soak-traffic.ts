import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

/** What a soak operation exercised. */
export type Kind = 'hit' | 'miss' | 'job' | 'job_result' | 'ws' | 'batch' | 'hostile';

/** Why an operation did not end as expected. */
export type Failure = 'unexpected_status' | 'reset' | 'timeout' | 'network' | 'ws_failed';

/** How one operation ended. */
export interface Outcome {
  kind: Kind;
  /** When it started (ms since the epoch). */
  at: number;
  ms: number;
  failure?: Failure;
  /** e.g. `hostile:oversize 500` or the network error code. */
  detail?: string;
}

/** The breast-cancer row of the README (30 features). */
const BASE_ROW = [
  17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589,
  153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622,
  0.6656, 0.7119, 0.2654, 0.4601, 0.1189,
];

/**
 * A row unique to `k` in float32: two integer-valued features (area mean and worst) carry `k`,
 * since inputs that differ only in a late decimal digit hash to the same cache key.
 */
export function soakRow(k: number): number[] {
  const row = [...BASE_ROW];
  row[3] = k % 10_000_000;
  row[23] = Math.floor(k / 10_000_000);
  return row;
}

const TIMEOUT_MS = 35_000;

function failureOf(err: unknown): { failure: Failure; detail: string } {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError')
    return { failure: 'timeout', detail: 'timeout' };
  const code = e.cause?.code ?? e.message ?? 'unknown';
  const reset = /ECONNRESET|EPIPE|UND_ERR_SOCKET|other side closed|socket hang up/i.test(
    `${code} ${e.cause?.message ?? ''}`,
  );
  return { failure: reset ? 'reset' : 'network', detail: code };
}

/** Sends one HTTP request and checks its status against `expected`. */
export async function timed(
  kind: Kind,
  url: string,
  init: RequestInit,
  expected: number[],
  label = kind,
): Promise<Outcome & { body?: unknown }> {
  const at = Date.now();
  const started = performance.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
    const text = await res.text();
    const ms = performance.now() - started;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    if (expected.includes(res.status)) return { kind, at, ms, body };
    return { kind, at, ms, failure: 'unexpected_status', detail: `${label} ${res.status}`, body };
  } catch (err) {
    return { kind, at, ms: performance.now() - started, ...failureOf(err) };
  }
}

/** One WebSocket per API key, many predictions in flight on it. */
export class LiveFeed {
  private socket: WebSocket | undefined;
  private readonly pending = new Map<
    string,
    { at: number; started: number; done: (o: Outcome) => void }
  >();
  private seq = 0;

  constructor(
    private readonly url: string,
    private readonly key: string,
  ) {}

  private connect(): Promise<WebSocket> {
    if (this.socket?.readyState === WebSocket.OPEN) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url, { headers: { 'x-api-key': this.key } });
      socket.once('open', () => resolve(socket));
      socket.once('error', reject);
      socket.on('message', (data: Buffer) => this.onMessage(data.toString('utf8')));
      socket.on('close', () => {
        // Whatever was in flight on it is lost: each counts as a failure.
        for (const [ref, p] of this.pending) {
          this.pending.delete(ref);
          p.done({
            kind: 'ws',
            at: p.at,
            ms: performance.now() - p.started,
            failure: 'ws_failed',
            detail: 'ws closed',
          });
        }
        if (this.socket === socket) this.socket = undefined;
      });
      this.socket = socket;
    });
  }

  private onMessage(text: string): void {
    const msg = JSON.parse(text) as { ref?: string; status?: string; error?: { code?: string } };
    const p = msg.ref ? this.pending.get(msg.ref) : undefined;
    if (!p || !msg.ref) return;
    this.pending.delete(msg.ref);
    const ms = performance.now() - p.started;
    if (msg.status === 'completed') p.done({ kind: 'ws', at: p.at, ms });
    else
      p.done({
        kind: 'ws',
        at: p.at,
        ms,
        failure: 'ws_failed',
        detail: `ws ${msg.error?.code ?? msg.status}`,
      });
  }

  /** Sends one prediction and resolves with how it ended. */
  async predict(features: number[]): Promise<Outcome> {
    const at = Date.now();
    const started = performance.now();
    try {
      const socket = await this.connect();
      const ref = `r${++this.seq}`;
      return await new Promise<Outcome>((done) => {
        const timer = setTimeout(() => {
          this.pending.delete(ref);
          done({
            kind: 'ws',
            at,
            ms: performance.now() - started,
            failure: 'timeout',
            detail: 'ws timeout',
          });
        }, TIMEOUT_MS);
        this.pending.set(ref, {
          at,
          started,
          done: (o) => {
            clearTimeout(timer);
            done(o);
          },
        });
        socket.send(JSON.stringify({ ref, model: 'breast-cancer', features }));
      });
    } catch (err) {
      return { kind: 'ws', at, ms: performance.now() - started, ...failureOf(err) };
    }
  }

  close(): void {
    this.socket?.close();
  }
}

/** A hostile request and the statuses the contract allows for it. */
interface Hostile {
  name: string;
  path: string;
  init: RequestInit;
  expected: number[];
}

const json = (key: string, extra: Record<string, string> = {}) => ({
  'content-type': 'application/json',
  'x-api-key': key,
  ...extra,
});

/** Hostile request number `n` (a rotation of kinds), sent with API key `key`. */
export function hostile(
  n: number,
  key: string,
  otherJobPath: string | undefined,
  oversizeBytes: number,
): Hostile {
  const predict = '/v1/models/breast-cancer/predict';
  const oddIds = [
    'events-p0',
    'id-p0',
    '..%2F..%2Fetc%2Fpasswd',
    'x'.repeat(300),
    '%00',
    randomBytes(12).toString('hex'),
  ];
  const cases: Hostile[] = [
    {
      name: 'bad_json',
      path: predict,
      init: { method: 'POST', headers: json(key), body: '{"features": [1, 2' },
      expected: [400],
    },
    {
      name: 'oversize',
      path: predict,
      init: {
        method: 'POST',
        headers: json(key),
        body: `{"features": [${'1,'.repeat(oversizeBytes / 2)}1]}`,
      },
      expected: [413],
    },
    {
      name: 'wrong_width',
      path: predict,
      init: {
        method: 'POST',
        headers: json(key),
        body: JSON.stringify({ features: BASE_ROW.slice(1) }),
      },
      expected: [422],
    },
    {
      name: 'odd_id',
      path: `/v1/jobs/${oddIds[n % oddIds.length]}`,
      init: { headers: { 'x-api-key': key } },
      expected: [404, 422],
    },
    {
      name: 'other_tenant',
      path: otherJobPath ?? '/v1/jobs/none',
      init: { headers: { 'x-api-key': key } },
      expected: [404, 422],
    },
    {
      name: 'bad_key',
      path: predict,
      init: {
        method: 'POST',
        headers: json('not-a-key'),
        body: JSON.stringify({ features: BASE_ROW }),
      },
      expected: [401],
    },
    {
      name: 'unknown_model',
      path: '/v1/models/no-such-model/predict',
      init: { method: 'POST', headers: json(key), body: JSON.stringify({ features: BASE_ROW }) },
      expected: [404],
    },
    {
      name: 'non_finite',
      path: predict,
      init: {
        method: 'POST',
        headers: json(key),
        body: `{"features": [${BASE_ROW.slice(1).join(',')},1e999]}`,
      },
      expected: [422],
    },
    {
      name: 'media_type',
      path: predict,
      init: {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'x-api-key': key },
        body: 'hello',
      },
      expected: [415],
    },
    {
      name: 'deep_json',
      path: predict,
      init: {
        method: 'POST',
        headers: json(key),
        body: `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
      },
      expected: [400, 422],
    },
  ];
  return cases[n % cases.length] ?? cases[0]!;
}
