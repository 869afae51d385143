import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { jobShard, newJobId } from '../../src/api/jobs/public-ids.js';
import { ConfigError, loadConfig, parseShardList } from '../../src/shared/config.js';
import { createKeys } from '../../src/shared/keys.js';
import { chunkShard, shardOfHash, shardOfText, shardPrefixes } from '../../src/shared/shards.js';

const tagOf = (key: string) => /\{([^}]+)\}/.exec(key)?.[1];

describe('queue shards', () => {
  it('keeps the prefix as it is with one shard', () => {
    expect(shardPrefixes('{inferq}', 1)).toEqual(['{inferq}']);
    expect(createKeys('{inferq}').cache('anon', 'ab')).toBe('{inferq}:cache:anon:ab');
  });

  it('gives each shard its own tag, in its own equal share of the slot space', () => {
    for (const count of [2, 3, 6, 12]) {
      const prefixes = shardPrefixes('{inferq}', count);
      expect(new Set(prefixes).size).toBe(count);
      prefixes.forEach((prefix, i) => {
        expect(prefix).toMatch(new RegExp(`^\\{inferq-${i}(\\.\\d+)?\\}$`));
        const slot = calculateSlot(prefix);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((i * 16384) / count));
        expect(slot).toBeLessThan(Math.floor(((i + 1) * 16384) / count));
      });
    }
    // Three masters with equal slot ranges hold two of six shards each.
    const perMaster = [0, 0, 0];
    for (const prefix of shardPrefixes('{inferq}', 6)) {
      const slot = calculateSlot(prefix);
      perMaster[slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2]! += 1;
    }
    expect(perMaster).toEqual([2, 2, 2]);
    // Without a tag (single Redis only), shards are plain suffixes.
    expect(shardPrefixes('inferq', 2)).toEqual(['inferq-0', 'inferq-1']);
  });

  it('picks an input shard from its hash, stable and spread', () => {
    const hashes = Array.from({ length: 600 }, (_, i) =>
      ((i * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(8),
    );
    const counts = [0, 0, 0, 0, 0, 0];
    for (const h of hashes) counts[shardOfHash(h, 6)]! += 1;
    for (const n of counts) expect(n).toBeGreaterThan(50);
    expect(shardOfHash(hashes[7]!, 6)).toBe(shardOfHash(hashes[7]!, 6));
    expect(shardOfHash(hashes[7]!, 1)).toBe(0);
    expect(shardOfText('anon-abc', 6)).toBe(shardOfText('anon-abc', 6));
  });

  it('deals a batch its chunks round every shard', () => {
    const shards = Array.from({ length: 12 }, (_, n) => chunkShard('b1', n, 6));
    expect(new Set(shards.slice(0, 6)).size).toBe(6);
    expect(shards.slice(6)).toEqual(shards.slice(0, 6));
  });

  it('names the shard in the job id', () => {
    for (const shard of [0, 1, 5, 63]) {
      const id = newJobId(shard);
      expect(id).toMatch(/^j[0-9a-f]{24}$/);
      expect(jobShard(id)).toBe(shard);
    }
    expect(jobShard('b-whatever-1')).toBe(0);
  });

  it('never repeats a job id across refills of its random pool', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => newJobId(i % 7));
    expect(new Set(ids).size).toBe(ids.length);
    ids.forEach((id, i) => expect(jobShard(id)).toBe(i % 7));
    // The random part varies in every byte position, not just somewhere.
    for (let at = 3; at < 25; at += 2)
      expect(new Set(ids.map((id) => id.slice(at, at + 2))).size).toBeGreaterThan(100);
  });

  it('spreads per-request keys over the cluster, an input with its claim in one slot', () => {
    const keys = createKeys('{inferq}', 6);
    expect(tagOf(keys.cache('anon', 'aa'))).toBe('anon:aa');
    expect(calculateSlot(keys.cache('anon', 'aa'))).toBe(
      calculateSlot(keys.inflight('anon', 'aa')),
    );
    expect(calculateSlot(keys.cache('anon', 'aa'))).not.toBe(
      calculateSlot(keys.cache('anon', 'bb')),
    );
    expect(tagOf(keys.idempotency('x'))).toBeUndefined();
    expect(tagOf(keys.rateLimit('x'))).toBeUndefined();
    expect(tagOf(keys.cancelled('j1'))).toBeUndefined();
    // A batch's record and chunks share its id as tag: its scripts touch several at once.
    const id = '0b6e6a3e-2c7a-4a57-9a86-0c3f0f7f2a11';
    expect(
      new Set([keys.batch(id), keys.batchInput(id, 3), keys.batchOutput(id, 9)].map(tagOf)),
    ).toEqual(new Set([id]));
  });
});

describe('QUEUE_SHARDS and WORKER_SHARDS', () => {
  it('defaults to 1 shard on a single Redis and 6 on a Cluster', () => {
    expect(loadConfig({}).QUEUE_SHARDS).toBe(1);
    expect(
      loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', QUEUE_PREFIX: '{x}' }).QUEUE_SHARDS,
    ).toBe(6);
    expect(loadConfig({ QUEUE_SHARDS: '4' }).QUEUE_SHARDS).toBe(4);
  });

  it('refuses shard settings out of range, naming the variable', () => {
    expect(() => loadConfig({ QUEUE_SHARDS: '0' })).toThrow(/QUEUE_SHARDS/);
    expect(() => loadConfig({ QUEUE_SHARDS: '65' })).toThrow(/QUEUE_SHARDS/);
    expect(() => loadConfig({ QUEUE_SHARDS: '4', WORKER_SHARDS: '2-4' })).toThrow(ConfigError);
    expect(() => loadConfig({ QUEUE_SHARDS: '4', WORKER_SHARDS: '2-4' })).toThrow(
      /WORKER_SHARDS.*shard 4 does not exist/,
    );
    expect(() => loadConfig({ WORKER_SHARDS: 'a' })).toThrow(/WORKER_SHARDS/);
  });

  it('reads shard lists with ranges', () => {
    expect(parseShardList('')).toEqual([]);
    expect(parseShardList('0-2, 5,1')).toEqual([0, 1, 2, 5]);
  });
});
