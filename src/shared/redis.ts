import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from './config.js';

/** Any connection createRedis returns: a single server (maybe behind Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster;

/** How a connection behaves while Redis is away. */
export type ConnectionRole =
  /** Request path: fail fast so the API can answer 503 instead of hanging. */
  | 'producer'
  /** BullMQ Worker and QueueEvents: block and retry forever (BullMQ requires this). */
  | 'blocking';

/** Where Redis is: one URL, plus Cluster startup nodes or Sentinels when configured. */
export interface RedisTopology {
  /** Redis URL (redis:// or rediss://); with nodes or Sentinels it still carries credentials and TLS. */
  url: string;
  /** Cluster startup nodes as host:port; non-empty = connect as a Cluster. */
  clusterNodes?: readonly string[];
  /** Sentinels as host:port; non-empty = find the master through them. */
  sentinels?: readonly string[];
  /** Name of the master the Sentinels monitor. */
  sentinelName?: string;
}

/** Options of createRedis. */
export interface RedisConnectionOptions extends RedisTopology {
  role: ConnectionRole;
  /** Connection name shown by CLIENT LIST. */
  name?: string;
  /** On a Cluster, subscribe with SSUBSCRIBE through one connection per master. */
  shardedSubscribers?: boolean;
}

/** The topology settings of a config, spread into createRedis options. */
export function topologyOf(config: Config): RedisTopology {
  return {
    url: config.REDIS_URL,
    clusterNodes: config.REDIS_CLUSTER_NODES,
    sentinels: config.REDIS_SENTINELS,
    sentinelName: config.REDIS_SENTINEL_NAME,
  };
}

// Reconnect with a short, capped backoff so recovery after a Redis restart takes about a second.
const retryStrategy = (attempt: number): number => Math.min(50 * 2 ** attempt, 1000);

/** Options for one ioredis connection of the given role. */
export function redisOptions(role: ConnectionRole, name?: string): RedisOptions {
  const common: RedisOptions = { retryStrategy, connectionName: name, lazyConnect: false };
  if (role === 'blocking') return { ...common, maxRetriesPerRequest: null, enableReadyCheck: true };
  return {
    ...common,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    commandTimeout: 5000,
    // Commands issued in the same event-loop turn (many concurrent requests) leave in one write.
    enableAutoPipelining: true,
  };
}

function hostPort(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
}

// Credentials and TLS of REDIS_URL, for the nodes of a Cluster.
function urlAuth(url: string): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const parsed = new URL(url);
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Options of a Cluster whose node connections behave like `role`. */
export function clusterOptions(role: ConnectionRole, url: string, name?: string): ClusterOptions {
  const base = redisOptions(role, name);
  return {
    clusterRetryStrategy: retryStrategy,
    enableOfflineQueue: base.enableOfflineQueue ?? true,
    enableReadyCheck: true,
    // A failed slot refresh must not outlast the producer's fail-fast budget.
    slotsRefreshTimeout: 2000,
    redisOptions: {
      connectionName: name,
      maxRetriesPerRequest: base.maxRetriesPerRequest,
      ...(base.connectTimeout ? { connectTimeout: base.connectTimeout } : {}),
      ...(base.commandTimeout ? { commandTimeout: base.commandTimeout } : {}),
      ...urlAuth(url),
    },
  };
}

/** Opens one connection (standalone, Sentinel or Cluster); the caller owns it and must quit it. */
export function createRedis(options: RedisConnectionOptions): RedisClient {
  const { url, role, name, clusterNodes = [], sentinels = [] } = options;
  if (clusterNodes.length > 0) {
    return new Cluster(clusterNodes.map(hostPort), {
      ...clusterOptions(role, url, name),
      ...(options.shardedSubscribers ? { shardedSubscribers: true } : {}),
    });
  }
  if (sentinels.length > 0) {
    return new Redis(url, {
      ...redisOptions(role, name),
      sentinels: sentinels.map(hostPort),
      name: options.sentinelName ?? 'mymaster',
    });
  }
  return new Redis(url, redisOptions(role, name));
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForReady(redis: RedisClient, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** Closes a connection politely, falling back to disconnect when Redis is gone. */
export async function closeRedis(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready') {
    // QUIT would only wait for a connection that is not there.
    redis.disconnect();
    return;
  }
  try {
    await Promise.race([
      redis.quit(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('quit timeout')), 1000)),
    ]);
  } catch {
    redis.disconnect();
  }
}

// ioredis and Redis messages that mean "Redis is away or not serving yet", not a bug.
const UNAVAILABLE_RE =
  /Command timed out|Connection is closed|Stream isn't writeable|enableOfflineQueue|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|^LOADING|^MASTERDOWN|^READONLY|^CLUSTERDOWN|^TRYAGAIN|Cluster isn't ready|None of startup nodes|Failed to refresh slots|Too many Cluster redirections/;

/** True when `err` says Redis is unreachable or not serving (answer 503), not that the code is wrong. */
export function isUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || UNAVAILABLE_RE.test(err.message);
}
