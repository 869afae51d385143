import { hostile, LiveFeed, soakRow, timed, type Outcome } from './soak-traffic.js';

/** The API keys of a soak deployment (API_KEYS=keyA,keyB). */
export const SOAK_KEYS = ['keyA', 'keyB'] as const;

/** Share of each operation in the mix, in percent. */
const WEIGHTS = { hit: 35, miss: 30, job: 10, ws: 15, hostile: 10 } as const;

/** Options of SoakMix. */
export interface SoakMixOptions {
  /** Base URL of the API, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** Size of the oversized body of the hostile mix, bytes (above the API's MAX_BODY_BYTES). */
  oversizeBytes: number;
}

const HIT_POOL = 16;
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

/** The soak's traffic: cache hits and misses, async jobs, WebSocket, hostile requests, batches. */
export class SoakMix {
  private next = 1_000_000;
  private hostileN = 0;
  private readonly lastJob = new Map<string, string>();
  private readonly feeds = new Map<string, LiveFeed>();

  constructor(private readonly options: SoakMixOptions) {
    const ws = `${options.baseUrl.replace(/^http/, 'ws')}/v1/ws`;
    for (const key of SOAK_KEYS) this.feeds.set(key, new LiveFeed(ws, key));
  }

  private post(path: string, key: string, body: unknown, extra: Record<string, string> = {}) {
    return {
      url: `${this.options.baseUrl}${path}`,
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key, ...extra },
        body: JSON.stringify(body),
      },
    };
  }

  /** Predicts the hit pool of every key once, so that later hits are cache hits. */
  async warm(): Promise<void> {
    for (const key of SOAK_KEYS) {
      for (let i = 0; i < HIT_POOL; i++) {
        const { url, init } = this.post('/v1/models/breast-cancer/predict', key, {
          features: soakRow(i),
        });
        const o = await timed('hit', url, init, [200]);
        if (o.failure) throw new Error(`warm-up failed: ${o.detail}`);
      }
    }
  }

  private async predict(kind: 'hit' | 'miss', key: string): Promise<Outcome[]> {
    const k = kind === 'hit' ? Math.floor(Math.random() * HIT_POOL) : this.next++;
    const { url, init } = this.post(
      '/v1/models/breast-cancer/predict',
      key,
      { features: soakRow(k) },
      { prefer: 'wait=30' },
    );
    return [await timed(kind, url, init, [200])];
  }

  private async job(key: string): Promise<Outcome[]> {
    const { url, init } = this.post('/v1/jobs', key, {
      model: 'breast-cancer',
      features: soakRow(this.next++),
    });
    const posted = await timed('job', url, init, [202]);
    const id = (posted.body as { id?: string } | undefined)?.id;
    if (posted.failure || !id) return [posted];
    this.lastJob.set(key, id);
    const result = await timed(
      'job_result',
      `${this.options.baseUrl}/v1/jobs/${id}?wait=30`,
      { headers: { 'x-api-key': key } },
      [200],
    );
    const status = (result.body as { status?: string } | undefined)?.status;
    if (!result.failure && status !== 'completed') {
      return [posted, { ...result, failure: 'unexpected_status', detail: `job status ${status}` }];
    }
    return [posted, result];
  }

  private async hostile(key: string): Promise<Outcome[]> {
    const other = SOAK_KEYS.find((k) => k !== key) ?? key;
    const otherJob = this.lastJob.get(other);
    const h = hostile(
      this.hostileN++,
      key,
      otherJob ? `/v1/jobs/${otherJob}` : undefined,
      this.options.oversizeBytes,
    );
    const o = await timed('hostile', `${this.options.baseUrl}${h.path}`, h.init, h.expected);
    return [o.failure ? { ...o, detail: `${h.name}: ${o.detail ?? ''}` } : o];
  }

  /** One operation of the mix, chosen by weight, for a random key. */
  op(): Promise<Outcome[]> {
    const key = pick(SOAK_KEYS);
    let r = Math.random() * 100;
    if ((r -= WEIGHTS.hit) < 0) return this.predict('hit', key);
    if ((r -= WEIGHTS.miss) < 0) return this.predict('miss', key);
    if ((r -= WEIGHTS.job) < 0) return this.job(key);
    if ((r -= WEIGHTS.ws) < 0)
      return this.feeds
        .get(key)!
        .predict(soakRow(this.next++))
        .then((o) => [o]);
    return this.hostile(key);
  }

  /** Uploads an NDJSON batch of `rows` rows, waits for it, reads every result line. */
  async batch(rows: number): Promise<Outcome> {
    const key = pick(SOAK_KEYS);
    const first = this.next;
    this.next += rows;
    const body = Array.from({ length: rows }, (_, i) =>
      JSON.stringify({ id: `r${i}`, features: soakRow(first + i) }),
    ).join('\n');
    const at = Date.now();
    const started = performance.now();
    const headers = { 'x-api-key': key };
    const posted = await timed(
      'batch',
      `${this.options.baseUrl}/v1/batches?model=breast-cancer`,
      { method: 'POST', headers: { ...headers, 'content-type': 'application/x-ndjson' }, body },
      [202],
    );
    const id = (posted.body as { id?: string } | undefined)?.id;
    if (posted.failure || !id) return posted;
    for (let status = 'queued'; status !== 'completed';) {
      const view = await timed(
        'batch',
        `${this.options.baseUrl}/v1/batches/${id}?wait=30`,
        { headers },
        [200],
      );
      if (view.failure) return view;
      status = (view.body as { status?: string }).status ?? '?';
      if (status === 'cancelled' || performance.now() - started > 300_000) {
        return {
          kind: 'batch',
          at,
          ms: performance.now() - started,
          failure: 'unexpected_status',
          detail: `batch ${status}`,
        };
      }
    }
    const results = await timed(
      'batch',
      `${this.options.baseUrl}/v1/batches/${id}/results`,
      { headers },
      [200],
    );
    const text = typeof results.body === 'string' ? results.body : '';
    const lines = text.split('\n').filter((l) => l.includes('"status":"completed"')).length;
    const ms = performance.now() - started;
    if (results.failure) return results;
    if (lines !== rows) {
      return {
        kind: 'batch',
        at,
        ms,
        failure: 'unexpected_status',
        detail: `batch ${lines}/${rows} rows completed`,
      };
    }
    return { kind: 'batch', at, ms };
  }

  close(): void {
    for (const feed of this.feeds.values()) feed.close();
  }
}
