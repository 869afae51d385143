import { Redis, type RedisOptions } from 'ioredis';

/** How a connection behaves while Redis is away. */
export type ConnectionRole =
  /** Request path: fail fast so the API can answer 503 instead of hanging. */
  | 'producer'
  /** BullMQ Worker and QueueEvents: block and retry forever (BullMQ requires this). */
  | 'blocking';

/** Options of createRedis. */
export interface RedisConnectionOptions {
  /** Redis URL (redis:// or rediss://). */
  url: string;
  role: ConnectionRole;
  /** Connection name shown by CLIENT LIST. */
  name?: string;
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
  };
}

/** Opens one ioredis connection; the caller owns it and must quit it. */
export function createRedis(options: RedisConnectionOptions): Redis {
  return new Redis(options.url, redisOptions(options.role, options.name));
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitForReady(redis: Redis, timeoutMs = 5000): Promise<void> {
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
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await Promise.race([
      redis.quit(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('quit timeout')), 1000)),
    ]);
  } catch {
    redis.disconnect();
  }
}
