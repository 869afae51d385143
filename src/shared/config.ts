import { z } from 'zod';

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', ''])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const list = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  );

/** Every setting of inferq, read from the environment once and validated. */
export const ConfigSchema = z.object({
  /** Redis connection URL (redis:// or rediss://); default redis://127.0.0.1:6379. */
  REDIS_URL: z
    .string()
    .default('redis://127.0.0.1:6379')
    .refine((v) => /^rediss?:\/\//.test(v), 'must start with redis:// or rediss://'),
  /** Redis Cluster startup nodes, comma-separated host:port; set = every connection is a Cluster. */
  REDIS_CLUSTER_NODES: list.refine(
    (v) => v.every((n) => /^[^\s:]+:\d{1,5}$/.test(n)),
    'must be a comma-separated list of host:port',
  ),
  /** Redis Sentinels, comma-separated host:port; set = the master is found through them. */
  REDIS_SENTINELS: list.refine(
    (v) => v.every((n) => /^[^\s:]+:\d{1,5}$/.test(n)),
    'must be a comma-separated list of host:port',
  ),
  /** Name of the Sentinel-monitored master; default mymaster. */
  REDIS_SENTINEL_NAME: z.string().min(1).default('mymaster'),
  /** Prefix of every Redis key inferq and BullMQ write; the braces make it a Cluster hash tag. */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}.-]+$/, 'letters, digits, _ . - { } only')
    .default('{inferq}'),
  /**
   * Shard queues per queue, each under its own hash tag so that a Cluster spreads them over its
   * masters; default 1 on a single Redis or Sentinel, 6 with REDIS_CLUSTER_NODES.
   */
  QUEUE_SHARDS: z.coerce.number().int().min(1).max(64).optional(),
  /**
   * Shards this worker consumes, comma-separated indexes or ranges (`0-2,5`); default every
   * shard. Lets hosts split the work.
   */
  WORKER_SHARDS: z
    .string()
    .default('')
    .refine(
      (v) => /^\s*(\d+(-\d+)?\s*(,\s*\d+(-\d+)?\s*)*)?$/.test(v),
      'must be shard indexes or ranges, e.g. 0-2,5',
    ),
  /** Host the API binds to. */
  HOST: z.string().default('0.0.0.0'),
  /** Port the API listens on; default 8080. */
  PORT: int(8080, 0).refine((v) => v <= 65535, 'must be a port number'),
  /** Folder of the model repository; default ./models. */
  MODEL_DIR: z.string().min(1).default('models'),
  /** How many newest versions of each model are served; default 3. */
  MODEL_VERSIONS_KEPT: int(3, 1),
  /** Most instances in one online request; default 1000. */
  MAX_INSTANCES: int(1000, 1),
  /** Lifetime of a cached prediction, seconds; default 3600 (0 disables the cache). */
  CACHE_TTL_S: int(3600, 0),
  /**
   * Who shares the result cache: `key` (default) keeps each API key's cached results and
   * in-flight claims apart, so no tenant can learn another's inputs; `shared` lets every key
   * reuse every result (more hits, but a hit then tells that someone sent that input).
   */
  CACHE_SCOPE: z.enum(['key', 'shared']).default('key'),
  /**
   * Secret that public job ids are encrypted with (at least 32 characters); empty = one random
   * secret per deployment, created once in Redis and shared by every API replica.
   */
  ID_SECRET: z
    .string()
    .default('')
    .refine((v) => v === '' || v.length >= 32, 'must be at least 32 characters'),
  /** Lifetime of a finished job and its result, seconds; default 86400. */
  RESULT_TTL_S: int(86_400, 1),
  /** How long an online request waits for its result before answering 202, seconds; default 30. */
  DEFAULT_WAIT_S: int(30, 0),
  /** Upper bound of `Prefer: wait=N`, seconds; default 60. */
  MAX_WAIT_S: int(60, 0),
  /** Largest accepted request body, bytes; default 10 MiB. */
  MAX_BODY_BYTES: int(10 * 1024 * 1024, 1),
  /** Most rows of one NDJSON batch upload; default 1,000,000. */
  MAX_BATCH_ROWS: int(1_000_000, 1),
  /** Most bytes of one NDJSON batch upload, blank lines included; default 1 GiB. */
  MAX_BATCH_BYTES: int(1024 * 1024 * 1024, 1),
  /** Longest NDJSON line, bytes; default 65,536. */
  MAX_LINE_BYTES: int(65_536, 1),
  /** Rows per batch chunk: one BullMQ job and one result key each; default 2000 (~0.03 Redis commands a row). */
  BATCH_CHUNK_ROWS: int(2000, 1).refine((v) => v <= 100_000, 'must be at most 100000'),
  /**
   * Rows of one inference run of a batch chunk, whatever model (fewer when a run's input would
   * pass 16 MB); default 4096, a whole chunk of the default size. Online micro-batches follow
   * MAX_BATCH_SIZE (or the model's `batching.maxBatchSize`); nobody waits on one row of a chunk,
   * and each run costs a fixed overhead besides its rows.
   */
  BATCH_RUN_ROWS: int(4096, 1),
  /** Batch chunks one worker process runs at once (its own queue, so idle workers take the rest); default 2. */
  BATCH_WORKER_CONCURRENCY: int(2, 1),
  /** Most finished jobs kept per state (completed, failed) whatever their age; default 100000. */
  RESULT_MAX_JOBS: int(100_000, 1),
  /** Waiting jobs above which new work is refused with 429 queue_full; 0 = unbounded; default 100000. */
  MAX_QUEUE_DEPTH: int(100_000, 0),
  /** Comma-separated API keys; empty = no authentication. */
  API_KEYS: list,
  /** Token for /admin/queues; empty = Bull Board off. */
  ADMIN_TOKEN: z.string().default(''),
  /** Bull Board shows queues and jobs but offers no retry, clean or remove actions; default false. */
  ADMIN_READ_ONLY: bool(false),
  /** Bearer token (or Basic password) for GET /metrics; empty = open. */
  METRICS_TOKEN: z.string().default(''),
  /** Port of a worker's Prometheus endpoint (GET /metrics); 0 = off; default 9465. */
  WORKER_METRICS_PORT: int(9465, 0).refine((v) => v <= 65535, 'must be a port number'),
  /** Sustained requests per second allowed per API key (per client IP without API_KEYS); 0 = off. */
  RATE_LIMIT_RPS: z.coerce.number().min(0).default(0),
  /** Requests a key may send at once above the sustained rate; 0 = one second's worth (RATE_LIMIT_RPS). */
  RATE_LIMIT_BURST: int(0, 0),
  /** Read the client IP for rate limits from X-Forwarded-For (behind a trusted proxy); default false. */
  TRUST_PROXY: bool(false),
  /**
   * Proxies in front of the API that append to X-Forwarded-For (with TRUST_PROXY): the client IP
   * is read this many entries from the right, so a client cannot choose it; default 1.
   */
  TRUST_PROXY_HOPS: int(1, 1),
  /** How often the API refreshes the queue depth for backpressure, milliseconds; default 500. */
  QUEUE_DEPTH_REFRESH_MS: int(500, 10),
  /** How often API and workers rescan MODEL_DIR for new versions, milliseconds; 0 = only on POST /admin/models/reload; default 5000. */
  MODEL_RESCAN_MS: int(5000, 0),
  /** Most rows in one inference batch; default 64. */
  MAX_BATCH_SIZE: int(64, 1),
  /** Longest a partial batch waits for more rows, milliseconds; default 2. */
  MAX_BATCH_DELAY_MS: z.coerce.number().min(0).default(2),
  /**
   * Online jobs reach idle workers through a list they block on (one hop, a few Redis commands)
   * instead of BullMQ's fetch; failed jobs and those of dead workers still go through BullMQ;
   * the API uses a shard's lane only while some worker consumes it; default true.
   */
  ONLINE_FAST_LANE: bool(true),
  /**
   * Jobs one worker process holds at once (each fast-lane job gathers up to 128 requests);
   * default 32. More only queue inside the worker: draining 10,000 waiting jobs took as long
   * with 256 as with 32, and their answers came later (p99 96 ms after the job's end against 36).
   */
  WORKER_CONCURRENCY: int(32, 1),
  /** Name stored on every job this worker processes (BullMQ `processedBy`); default <hostname>-<pid>. */
  WORKER_NAME: z.string().max(200).default(''),
  /**
   * Lock on an active job, milliseconds, renewed every fifth of it by a thread of the worker (not
   * its event loop); a killed worker's jobs run again on another once it lapses; default 6000.
   */
  WORKER_LOCK_MS: int(6000, 1000),
  /** Period of the stalled-job check that takes back a dead worker's jobs, milliseconds; default 1000. */
  WORKER_STALLED_INTERVAL_MS: int(1000, 500),
  /**
   * A worker whose event loop has not turned for this long is taken for hung: its job locks are
   * no longer renewed, so other workers run its jobs; milliseconds, default 60000.
   */
  WORKER_HUNG_MS: int(60_000, 1000),
  /** Times a job may be recovered from a dead worker before it fails; default 1. */
  WORKER_MAX_STALLED_COUNT: int(1, 0),
  /** Attempts of a job before it fails (transient errors only); default 3. */
  JOB_ATTEMPTS: int(3, 1),
  /** First retry delay of a job, milliseconds, doubled each attempt; default 500. */
  JOB_BACKOFF_MS: int(500, 0),
  /** onnxruntime intra-op threads per session; default 1 (measured fastest here). */
  INTRA_OP_THREADS: int(1, 1),
  /**
   * Inference runs of at most this many rows run on the worker's main thread, from a second
   * session of each model, instead of a round trip to the inference thread; larger runs (and
   * every run of a model whose ONNX file is over 64 MB) stay on the inference thread; 0 = all
   * of them. Default 64.
   */
  INLINE_INFERENCE_ROWS: int(64, 0),
  /** Longest graceful shutdown before forced exit, milliseconds; default 30000. */
  SHUTDOWN_TIMEOUT_MS: int(30_000, 0),
  /**
   * After SIGTERM the API keeps its listener and keep-alive connections open this long, answering
   * every new request 503 unavailable with `Connection: close`, before it stops listening
   * (it stops sooner once no connection is left), milliseconds; default 1500.
   */
  SHUTDOWN_DRAIN_MS: int(1500, 0),
  /** pino log level. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Log request feature values (off by default: they may be personal data). */
  LOG_FEATURES: bool(false),
});

/** Validated, frozen settings (QUEUE_SHARDS resolved to a number). */
export type Config = Readonly<
  Omit<z.infer<typeof ConfigSchema>, 'QUEUE_SHARDS'> & { QUEUE_SHARDS: number }
>;

/** Default QUEUE_SHARDS on a Cluster: two per master of a 3-master cluster. */
export const CLUSTER_QUEUE_SHARDS = 6;

/** The shard indexes listed by a WORKER_SHARDS value (empty = none listed). */
export function parseShardList(value: string): number[] {
  const out = new Set<number>();
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [from, to = from] = part.split('-').map(Number) as [number, number?];
    for (let i = from; i <= to; i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

/** Raised by loadConfig with every bad variable named. */
export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses settings from an environment map; pure, throws ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(
    Object.keys(ConfigSchema.shape)
      .map((k) => [k, env[k]] as const)
      .filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = ConfigSchema.safeParse(known);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? '');
        return `${name}=${JSON.stringify(env[name] ?? '')}: ${i.message}`;
      }),
    );
  }
  if (parsed.data.REDIS_CLUSTER_NODES.length > 0 && parsed.data.REDIS_SENTINELS.length > 0) {
    throw new ConfigError(['REDIS_SENTINELS: cannot be combined with REDIS_CLUSTER_NODES']);
  }
  if (parsed.data.REDIS_CLUSTER_NODES.length > 0 && !hasHashTag(parsed.data.QUEUE_PREFIX)) {
    throw new ConfigError([
      `QUEUE_PREFIX=${JSON.stringify(parsed.data.QUEUE_PREFIX)}: must contain a hash tag such as {inferq} when REDIS_CLUSTER_NODES is set (BullMQ keeps a queue's keys in one slot)`,
    ]);
  }
  const cluster = parsed.data.REDIS_CLUSTER_NODES.length > 0;
  const shards = parsed.data.QUEUE_SHARDS ?? (cluster ? CLUSTER_QUEUE_SHARDS : 1);
  const outside = parseShardList(parsed.data.WORKER_SHARDS).filter((i) => i >= shards);
  if (outside.length > 0) {
    throw new ConfigError([
      `WORKER_SHARDS=${JSON.stringify(parsed.data.WORKER_SHARDS)}: shard ${outside[0]} does not exist (QUEUE_SHARDS=${shards}: 0-${shards - 1})`,
    ]);
  }
  if (parsed.data.MAX_WAIT_S < parsed.data.DEFAULT_WAIT_S) {
    throw new ConfigError([
      `MAX_WAIT_S: must be at least DEFAULT_WAIT_S (${parsed.data.DEFAULT_WAIT_S})`,
    ]);
  }
  return Object.freeze({ ...parsed.data, QUEUE_SHARDS: shards });
}

/** True when `key` starts a Redis Cluster hash tag: a non-empty `{...}` at its first brace. */
export function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1;
}

/** REDIS_URL with its password replaced, safe to log. */
export function redactUrl(url: string): string {
  // Greedy up to the authority's last '@', as URL parsers read it: a password may contain '@'.
  return url.replace(/\/\/([^/?#]*)@/, (_m, auth: string) => {
    const user = auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : '';
    return `//${user}:***@`;
  });
}
