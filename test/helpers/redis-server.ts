import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { exited, stopChild } from '../../src/cli/children.js';

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a Redis answers PING at `port` within `timeoutMs`. */
export async function pings(port: number, timeoutMs = 500): Promise<boolean> {
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** A private redis-server child: its port, URL and data folder. */
export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  child: ChildProcess;
  /** Stops it by pid (SIGTERM unless `signal` says otherwise) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and folder, with the same or other extra arguments. */
  restart(extraArgs?: string[]): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

/** Options of startRedisServer. */
export interface RedisServerOptions {
  port?: number;
  /** Extra redis-server arguments (default: no persistence at all). */
  args?: string[];
  /** Data folder; default a fresh temporary one. */
  dir?: string;
}

function launch(port: number, dir: string, args: string[]): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...args],
    { stdio: 'ignore' },
  );
}

async function waitPing(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited at start`);
    if (await pings(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on ${port} did not answer within ${timeoutMs} ms`);
}

/** Starts a redis-server on a free loopback port (never the shared 6379); stop it by pid. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'inferq-redis-'));
  let args = options.args ?? ['--appendonly', 'no'];
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    child: launch(port, dir, args),
    stop: async (signal = 'SIGTERM') => {
      const child = server.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (signal === 'SIGTERM') return stopChild(child, 5000);
      const gone = exited(child);
      child.kill(signal);
      await gone;
    },
    restart: async (extraArgs) => {
      await server.stop();
      if (extraArgs) args = extraArgs;
      server.child = launch(port, dir, args);
      await waitPing(port, server.child);
    },
    dispose: async () => {
      await server.stop('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await waitPing(port, server.child);
  return server;
}

/** A local Redis Cluster of redis-server children. */
export interface RedisClusterHandle {
  /** Startup nodes as host:port. */
  nodes: string[];
  servers: RedisServer[];
  /** Stops every node by pid and removes their folders. */
  dispose(): Promise<void>;
}

/** Polls a node's `read` (an INFO text) until `ok` holds; throws naming `what` after `timeoutMs`. */
async function untilInfo(
  port: number,
  read: (redis: Redis) => Promise<unknown>,
  ok: RegExp,
  what: string,
  timeoutMs: number,
): Promise<void> {
  const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (ok.test(String(await read(redis).catch(() => '')))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${what} on ${port} within ${timeoutMs} ms`);
  } finally {
    redis.disconnect();
  }
}

const clusterOk = (port: number, timeoutMs: number) =>
  untilInfo(port, (r) => r.cluster('INFO'), /cluster_state:ok/, 'cluster_state not ok', timeoutMs);

const replicaSynced = (port: number, timeoutMs: number) =>
  untilInfo(
    port,
    (r) => r.info('replication'),
    /role:master|master_link_status:up/,
    'replica not in sync with its master',
    timeoutMs,
  );

/** Options of startRedisCluster. */
export interface RedisClusterOptions {
  /** Masters; default 3. */
  masters?: number;
  /** Replicas per master; default 0. */
  replicas?: number;
  /** cluster-node-timeout, ms: how soon a silent master is failed over; default Redis's 15000. */
  nodeTimeoutMs?: number;
}

/**
 * Starts cluster-enabled nodes (masters × (1 + replicas)) and joins them with
 * `redis-cli --cluster create`, which gives each master an equal share of the slots.
 */
export async function startRedisCluster(
  options: RedisClusterOptions | number = {},
): Promise<RedisClusterHandle> {
  const {
    masters = 3,
    replicas = 0,
    nodeTimeoutMs,
  } = typeof options === 'number' ? { masters: options } : options;
  const servers: RedisServer[] = [];
  const dispose = async () => {
    await Promise.all(servers.map((s) => s.dispose()));
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const dir = mkdtempSync(join(tmpdir(), 'inferq-cluster-'));
      const port = await freePort();
      servers.push(
        await startRedisServer({
          port,
          dir,
          args: [
            '--appendonly',
            'no',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            ...(nodeTimeoutMs ? ['--cluster-node-timeout', String(nodeTimeoutMs)] : []),
          ],
        }),
      );
    }
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    if (created.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${created.stdout}`);
    for (const s of servers) await clusterOk(s.port, 15_000);
    // A replica still in its first sync cannot take over (Redis refuses: "disconnected from
    // master for longer than allowed"): start from replicas that hold their master's data.
    for (const s of servers) await replicaSynced(s.port, 30_000);
    return { nodes, servers, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
