import type { JobCounter } from '../../shared/shards.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../../shared/logger.js';

/** Queue states reported by `inferq_queue_jobs`. */
export const QUEUE_STATES = [
  'waiting',
  'prioritized',
  'active',
  'delayed',
  'failed',
  'completed',
] as const;

/** Request latency buckets, seconds: 1 ms .. 60 s (long-polls and waits included). */
const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

type HttpLabel = 'method' | 'route' | 'status';
/** One label set of the HTTP metrics: its histogram child and its request count. */
interface HttpSeries {
  readonly labels: Record<HttpLabel, string>;
  readonly duration: Histogram.Internal<HttpLabel>;
  count: number;
}

/** The API's Prometheus metrics, on a registry of its own (several apps may share a process). */
export class ApiMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status'>;
  readonly cacheRequests: Counter<'result'>;
  readonly coalesced: Counter;
  readonly jobWait: Histogram;
  readonly rateLimited: Counter;
  // Cache lookups so far (inferq_cache_requests_total).
  private readonly looked = { hits: 0, misses: 0 };

  constructor(queue: JobCounter, logger: Logger) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new Histogram({
      name: 'inferq_http_request_duration_seconds',
      help: 'Time from receiving a request to its response headers, seconds.',
      labelNames: ['method', 'route', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    // The request count is kept beside each label set's histogram child and handed over at
    // scrape time: one prom-client update per request instead of two (each hashes and checks
    // its labels). Synchronous, so that two scrapes at once cannot interleave reset and inc.
    const series = this.httpSeries;
    this.httpRequests = new Counter({
      name: 'inferq_http_requests_total',
      help: 'HTTP requests answered, by method, matched route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
      collect() {
        this.reset();
        for (const { labels, count } of series) this.inc(labels, count);
      },
    });
    // Counted in two plain numbers and handed over at scrape time: a labelled inc hashes and
    // checks its labels on every cache lookup.
    const looked = this.looked;
    this.cacheRequests = new Counter({
      name: 'inferq_cache_requests_total',
      help: 'Result-cache lookups of online predictions, by result (hit or miss).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        this.inc({ result: 'hit' }, looked.hits);
        this.inc({ result: 'miss' }, looked.misses);
      },
    });
    this.coalesced = new Counter({
      name: 'inferq_coalesced_requests_total',
      help: 'Predictions that joined an identical job already in flight instead of queuing one.',
      registers,
    });
    this.jobWait = new Histogram({
      name: 'inferq_job_wait_seconds',
      help: 'Time the jobs of online predictions waited in the queue before a worker took them, seconds.',
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.rateLimited = new Counter({
      name: 'inferq_rate_limited_requests_total',
      help: 'Requests refused with 429 rate_limited.',
      registers,
    });
    new Gauge({
      name: 'inferq_queue_jobs',
      help: 'Jobs in the prediction queue by state, read from Redis at scrape time.',
      labelNames: ['state'],
      registers,
      async collect() {
        try {
          const counts = await queue.getJobCounts(...QUEUE_STATES);
          for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
        } catch (err) {
          // A scrape while Redis is away keeps the last values rather than failing the scrape.
          logger.debug({ err: (err as Error).message }, 'queue metrics unavailable');
        }
      },
    });
  }

  /** Adds `inferq_batch_chunks{state}`: batch-chunk jobs of `queue` by state, read at scrape time. */
  watchBatchQueue(queue: JobCounter, logger: Logger): void {
    new Gauge({
      name: 'inferq_batch_chunks',
      help: 'Batch-chunk jobs (BATCH_CHUNK_ROWS rows each) by state, read from Redis at scrape time.',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        try {
          const counts = await queue.getJobCounts(...QUEUE_STATES);
          for (const state of QUEUE_STATES) this.set({ state }, counts[state] ?? 0);
        } catch (err) {
          logger.debug({ err: (err as Error).message }, 'batch queue metrics unavailable');
        }
      },
    });
  }

  /** Records how long a job that answered a prediction waited in the queue. */
  jobWaited(queueMs: number): void {
    if (Number.isFinite(queueMs)) this.jobWait.observe(Math.max(0, queueMs) / 1000);
  }

  // Label sets seen so far, by route, method and status: the label object is built once, and
  // no key string per request.
  private readonly httpByRoute = new Map<string, Map<string, Map<number, HttpSeries>>>();
  private readonly httpSeries: HttpSeries[] = [];

  /** Records one answered HTTP request: method, route pattern, status, seconds. */
  http(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.httpByRoute.get(route);
    if (!byMethod)
      this.httpByRoute.set(route, (byMethod = new Map<string, Map<number, HttpSeries>>()));
    let byStatus = byMethod.get(method);
    if (!byStatus) byMethod.set(method, (byStatus = new Map<number, HttpSeries>()));
    let series = byStatus.get(status);
    if (!series) {
      const labels = { method, route, status: String(status) };
      series = { labels, duration: this.httpDuration.labels(labels), count: 0 };
      byStatus.set(status, series);
      this.httpSeries.push(series);
    }
    series.count++;
    series.duration.observe(seconds);
  }

  /** Records one cache lookup. */
  cache(hit: boolean): void {
    if (hit) this.looked.hits++;
    else this.looked.misses++;
  }
}
