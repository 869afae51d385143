import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimKey, readLooked } from '../../src/api/predict/claims.js';
import { createKeys } from '../../src/shared/keys.js';
import { REDIS_URL, uniquePrefix } from '../helpers/env.js';

// Where an input in flight is claimed, and how a lookup reads its entry and claim back, on the
// shared Redis under a prefix of its own.
describe('in-flight claims', () => {
  let redis: Redis;
  const prefix = `{${uniquePrefix('claims')}}`;
  const keys = createKeys(prefix);

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    const left = await redis.keys(`${prefix}*`);
    if (left.length > 0) await redis.del(...left);
    redis.disconnect();
  });

  it("keeps a claim in the cache entry's key only where the cache is the owner's own", () => {
    const own = keys.cache('k1', 'h');
    expect(claimKey({ CACHE_SCOPE: 'key' }, keys, 'k1', 'h', own)).toBe(own);
    // A shared cache is read by every key: the claim stays per owner, in a key of its own.
    const shared = keys.cache('shared', 'h');
    expect(claimKey({ CACHE_SCOPE: 'shared' }, keys, 'k1', 'h', shared)).toBe(
      keys.inflight('k1', 'h'),
    );
    // No cache at all.
    expect(claimKey({ CACHE_SCOPE: 'key' }, keys, 'k1', 'h', undefined)).toBe(
      keys.inflight('k1', 'h'),
    );
  });

  it('reads entries and claims from one shared key or two keys, in one MGET', async () => {
    const one = (name: string) => ({
      cacheKey: `${prefix}:c:${name}`,
      claimKey: `${prefix}:c:${name}`,
    });
    const two = (name: string) => ({
      cacheKey: `${prefix}:c:${name}`,
      claimKey: `${prefix}:i:${name}`,
    });
    await redis.set(`${prefix}:c:a`, '{"results":[1]}');
    await redis.set(`${prefix}:c:b`, 'job1-p0');
    await redis.set(`${prefix}:c:d`, '{"results":[2]}');
    await redis.set(`${prefix}:i:d`, 'job2-p1');
    await redis.set(`${prefix}:i:e`, 'job3-p2');
    const read = await readLooked(redis, [
      one('a'),
      one('b'),
      one('none'),
      two('d'),
      two('e'),
      { claimKey: `${prefix}:i:e` },
    ]);
    expect(read).toEqual([
      { entry: '{"results":[1]}', claim: null },
      { entry: null, claim: 'job1-p0' },
      { entry: null, claim: null },
      { entry: '{"results":[2]}', claim: 'job2-p1' },
      { entry: null, claim: 'job3-p2' },
      { entry: null, claim: 'job3-p2' },
    ]);
  });
});
