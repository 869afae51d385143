import { describe, expect, it } from 'vitest';
import { hasHashTag } from '../../src/shared/config.js';
import { clusterOptions, isUnavailableError, redisOptions } from '../../src/shared/redis.js';

describe('Redis connection options', () => {
  it('gives Cluster node connections the fail-fast producer behaviour', () => {
    const options = clusterOptions('producer', 'redis://127.0.0.1:6379', 'api');
    expect(options.enableOfflineQueue).toBe(false);
    expect(options.redisOptions).toMatchObject({
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: 5000,
      connectionName: 'api',
    });
  });

  it('gives blocking Cluster connections unlimited retries, as BullMQ requires', () => {
    const options = clusterOptions('blocking', 'redis://127.0.0.1:6379');
    expect(options.enableOfflineQueue).toBe(true);
    expect(options.redisOptions?.maxRetriesPerRequest).toBeNull();
    expect(redisOptions('blocking').maxRetriesPerRequest).toBeNull();
  });

  it('takes Cluster credentials and TLS from a rediss:// REDIS_URL', () => {
    const options = clusterOptions('producer', 'rediss://app:p%40ss@redis.example:6380');
    expect(options.redisOptions).toMatchObject({ username: 'app', password: 'p@ss', tls: {} });
    expect(clusterOptions('producer', 'redis://127.0.0.1').redisOptions).not.toHaveProperty('tls');
  });
});

describe('isUnavailableError', () => {
  it('recognises ioredis and Redis messages that mean Redis is away or loading', () => {
    for (const message of [
      'Command timed out',
      'Connection is closed.',
      "Stream isn't writeable and enableOfflineQueue options is false",
      'connect ECONNREFUSED 127.0.0.1:6390',
      'LOADING Redis is loading the dataset in memory',
      'CLUSTERDOWN The cluster is down',
    ]) {
      expect(isUnavailableError(new Error(message)), message).toBe(true);
    }
  });

  it('leaves other errors to the 500 path', () => {
    expect(isUnavailableError(new Error('WRONGTYPE Operation against a key'))).toBe(false);
    expect(isUnavailableError(new TypeError('x is undefined'))).toBe(false);
    expect(isUnavailableError('Command timed out')).toBe(false);
  });
});

describe('hasHashTag', () => {
  it('accepts a non-empty {tag} at the first brace and nothing else', () => {
    expect(hasHashTag('{inferq}')).toBe(true);
    expect(hasHashTag('app{inferq}:x')).toBe(true);
    expect(hasHashTag('inferq')).toBe(false);
    expect(hasHashTag('{}inferq')).toBe(false);
    expect(hasHashTag('{inferq')).toBe(false);
  });
});
