/**
 * Vitest global setup: the tests use the Redis at TEST_REDIS_URL (default 127.0.0.1:6379). When
 * none answers there and it names this machine, a private redis-server is started on that port
 * for the run (no persistence) and stopped by pid afterwards, as `inferq start` does, so that
 * `npm test` works on a machine where Redis is installed but not running.
 */
import { pings, startRedisServer, type RedisServer } from './helpers/redis-server.js';

let server: RedisServer | undefined;

export async function setup(): Promise<void> {
  const url = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const port = Number(url.port || 6379);
  if (await pings(port, 1000)) return;
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw new Error(`No Redis answers at ${url.host}, and it is not on this machine to start one.`);
  }
  server = await startRedisServer({ port });
  process.stderr.write(
    `[test] started a private redis-server on port ${port} (pid ${server.child.pid})\n`,
  );
}

export async function teardown(): Promise<void> {
  await server?.dispose();
}
