import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { createLogger, type Logger } from '../../src/shared/logger.js';

/** URL of the shared Redis the tests use (never flushed: every test file has its own prefix). */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A fresh queue prefix, a Cluster hash tag like the default. */
export function uniquePrefix(label = 't'): string {
  return `{${label}-${randomUUID().slice(0, 8)}}`;
}

/** Config for a test: own prefix, quiet logs, overrides on top. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    REDIS_URL,
    QUEUE_PREFIX: uniquePrefix(),
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    MODEL_DIR: 'models',
    // In-process workers of parallel test files would all want the default metrics port.
    WORKER_METRICS_PORT: '0',
    ...overrides,
  });
}

/** A logger that prints nothing unless TEST_LOG_LEVEL is set. */
export function testLogger(service = 'test'): Logger {
  return createLogger({ service, level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

/**
 * Deletes every key under `prefix` (SCAN, never FLUSH), shard queues (`{p-0}`) and the
 * untagged per-request keys of a sharded deployment (`p:cache:...`) included.
 */
export async function removeKeys(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  const patterns = [`${prefix}:*`];
  if (prefix.endsWith('}')) patterns.push(`${prefix.slice(0, -1)}-*`, `${prefix.slice(1, -1)}:*`);
  try {
    for (const pattern of patterns) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
}

/** Polls `check` until it returns true, or fails after `timeoutMs` (test helper only). */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  stepMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}
