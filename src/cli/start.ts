import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig, redactUrl } from '../shared/config.js';
import { exited, spawnInferq, stopChild } from './children.js';

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      return statSync(resolve(dir, command)).isFile();
    } catch {
      return false;
    }
  });
}

async function startPrivateRedis(url: string): Promise<ChildProcess> {
  const { hostname, port } = new URL(url);
  const dir = resolve('.inferq', 'redis');
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    [
      '--port',
      port || '6379',
      '--bind',
      hostname || '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(url)) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopChild(child);
  throw new Error(`redis-server did not answer at ${redactUrl(url)}`);
}

async function waitReady(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health/ready`);
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/** Entry point of `inferq start`: Redis if needed, the API and one worker, all stopped together. */
export async function main(): Promise<void> {
  const config = loadConfig();
  const children: ChildProcess[] = [];
  let redis: ChildProcess | undefined;
  // A Cluster or Sentinel deployment is never replaced by a private redis-server.
  const external = config.REDIS_CLUSTER_NODES.length > 0 || config.REDIS_SENTINELS.length > 0;
  if (!external && !(await redisAnswers(config.REDIS_URL))) {
    const local = /^rediss?:\/\/(?:[^@/]*@)?(127\.0\.0\.1|localhost|\[::1\])(?::\d+)?/.test(
      config.REDIS_URL,
    );
    if (!local || !onPath('redis-server')) {
      console.error(
        `inferq: no Redis answers at ${redactUrl(config.REDIS_URL)}.\n` +
          'Install Redis (e.g. `apt-get install redis-server`) or point REDIS_URL at one, then run `npm start` again.',
      );
      process.exit(1);
    }
    console.log(
      `inferq: starting a private redis-server for ${redactUrl(config.REDIS_URL)} (data in .inferq/redis)`,
    );
    redis = await startPrivateRedis(config.REDIS_URL);
  }
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await Promise.all(children.map((c) => stopChild(c, config.SHUTDOWN_TIMEOUT_MS)));
    if (redis) await stopChild(redis);
    process.exit(code);
  };
  process.on('SIGTERM', () => void stopAll(0));
  process.on('SIGINT', () => void stopAll(0));
  // Bull Board is never open: without ADMIN_TOKEN, this run makes one and prints it below.
  const adminToken = config.ADMIN_TOKEN || randomBytes(18).toString('base64url');
  children.push(
    spawnInferq(['api'], { env: { ...process.env, ADMIN_TOKEN: adminToken } }),
    spawnInferq(['worker']),
  );
  for (const child of children) {
    void exited(child).then((code) => {
      if (!stopping) {
        console.error(`inferq: a child process exited (code ${code}); stopping everything`);
        void stopAll(1);
      }
    });
  }
  if (!(await waitReady(config.PORT, 60_000))) {
    console.error('inferq: the API did not become ready within 60 s');
    await stopAll(1);
    return;
  }
  const url = `http://127.0.0.1:${config.PORT}`;
  console.log(
    `\ninferq is ready at ${url}\n\nTry:\n  curl -s ${url}/v1/models/breast-cancer/predict -H 'Content-Type: application/json' \\\n    -d '{"features": [17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189]}'\n`,
  );
  const password = config.ADMIN_TOKEN ? 'your ADMIN_TOKEN' : adminToken;
  console.log(
    `Bull Board: ${url}/admin/queues\n  log in with any user name and the password ${password}\n  (or send "Authorization: Bearer <token>")\n` +
      `API docs:   ${url}/docs\nMetrics:    ${url}/metrics (API)` +
      (config.WORKER_METRICS_PORT > 0
        ? `, http://127.0.0.1:${config.WORKER_METRICS_PORT}/metrics (worker)\n`
        : '\n'),
  );
}
