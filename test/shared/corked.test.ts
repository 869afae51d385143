import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendTogether } from '../../src/shared/corked.js';
import { REDIS_URL, uniquePrefix } from '../helpers/env.js';

// Commands sent together without ioredis's Pipeline (src/shared/corked.ts), on the shared Redis
// under a prefix of their own.

describe('sendTogether', () => {
  let redis: Redis;
  const prefix = uniquePrefix('corked');

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    await redis.ping();
  });

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('leaves in one socket write and answers each command in order', async () => {
    const writes: number[] = [];
    const socket = redis.stream;
    const count = (original: (...args: never[]) => unknown) =>
      function (this: unknown, ...args: never[]) {
        writes.push(args.length);
        return original.apply(this, args);
      };
    // What reaches the socket's handle: one writev (or one write) for the whole batch.
    const handle = (socket as unknown as { _handle: Record<string, (...a: never[]) => unknown> })
      ._handle;
    const { writev, writeUtf8String } = handle;
    handle.writev = count(writev!);
    handle.writeUtf8String = count(writeUtf8String!);
    let replies: Promise<unknown>[];
    try {
      replies = sendTogether(redis, [
        ['set', `${prefix}:a`, 'one', 'EX', 60],
        ['incrby', `${prefix}:n`, 5],
        ['get', `${prefix}:a`],
        ['eval', 'return {KEYS[1], ARGV[1]}', 1, `${prefix}:k`, 'v'],
      ]);
    } finally {
      handle.writev = writev!;
      handle.writeUtf8String = writeUtf8String!;
    }
    expect(writes).toHaveLength(1);
    expect(await Promise.all(replies)).toEqual(['OK', 5, 'one', [`${prefix}:k`, 'v']]);
  });

  it('fails only the command that failed', async () => {
    await redis.set(`${prefix}:text`, 'not a number');
    const [bad, good] = sendTogether(redis, [
      ['incr', `${prefix}:text`],
      ['get', `${prefix}:text`],
    ]);
    await expect(bad).rejects.toThrow(/not an integer/);
    await expect(good).resolves.toBe('not a number');
  });

  it('sends a pipeline while the connection is not ready yet', async () => {
    const later = new Redis(REDIS_URL, { lazyConnect: true });
    try {
      expect(later.status).toBe('wait');
      const replies = sendTogether(later, [
        ['set', `${prefix}:lazy`, 'x', 'EX', 60],
        ['get', `${prefix}:lazy`],
      ]);
      expect(await Promise.all(replies)).toEqual(['OK', 'x']);
    } finally {
      later.disconnect();
    }
  });
});
