import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactUrl } from '../../src/shared/config.js';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      REDIS_URL: 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: '{inferq}',
      PORT: 8080,
      MODEL_DIR: 'models',
      MODEL_VERSIONS_KEPT: 3,
      MAX_INSTANCES: 1000,
      CACHE_TTL_S: 3600,
      RESULT_TTL_S: 86_400,
      DEFAULT_WAIT_S: 30,
      MAX_WAIT_S: 60,
      MAX_BODY_BYTES: 10 * 1024 * 1024,
      MAX_BATCH_ROWS: 1_000_000,
      MAX_LINE_BYTES: 65_536,
      API_KEYS: [],
      ADMIN_TOKEN: '',
      LOG_FEATURES: false,
    });
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '', CACHE_TTL_S: '' })).toMatchObject({
      PORT: 8080,
      CACHE_TTL_S: 3600,
    });
  });

  it('coerces numbers, booleans and comma lists from strings', () => {
    const config = loadConfig({
      PORT: '9000',
      CACHE_TTL_S: '0',
      LOG_FEATURES: 'yes',
      API_KEYS: ' a, b ,,c ',
    });
    expect(config.PORT).toBe(9000);
    expect(config.CACHE_TTL_S).toBe(0);
    expect(config.LOG_FEATURES).toBe(true);
    expect(config.API_KEYS).toEqual(['a', 'b', 'c']);
  });

  it('ignores variables it does not know', () => {
    expect(() => loadConfig({ PATH: '/usr/bin', SOMETHING_ELSE: 'x' })).not.toThrow();
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['CACHE_TTL_S', '-1'],
    ['REDIS_URL', 'http://x'],
    ['MODEL_VERSIONS_KEPT', '0'],
    ['MAX_BATCH_SIZE', '1.5'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_FEATURES', 'maybe'],
    ['QUEUE_PREFIX', 'has space'],
  ])('rejects %s=%s with a ConfigError naming the variable', (name, value) => {
    const err = configError({ [name]: value });
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toContain(name);
    expect(err.message).toContain(`${name}=${JSON.stringify(value)}`);
  });

  it('names every bad variable at once', () => {
    const err = configError({
      PORT: 'abc',
      CACHE_TTL_S: '-1',
      REDIS_URL: 'http://x',
      LOG_LEVEL: 'loud',
    });
    const named = err.issues.map((i) => i.split('=')[0]);
    expect(named.sort()).toEqual(['CACHE_TTL_S', 'LOG_LEVEL', 'PORT', 'REDIS_URL']);
    for (const name of named) expect(err.message).toContain(name as string);
  });

  it('rejects MAX_WAIT_S below DEFAULT_WAIT_S naming MAX_WAIT_S', () => {
    const err = configError({ DEFAULT_WAIT_S: '30', MAX_WAIT_S: '10' });
    expect(err.message).toContain('MAX_WAIT_S');
  });

  it('returns a frozen object', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { PORT: number }).PORT = 1;
    }).toThrow(TypeError);
    expect(config.PORT).toBe(8080);
  });
});

describe('redactUrl', () => {
  it('hides the password and keeps user, host and port', () => {
    const redacted = redactUrl('redis://alice:s3cret@redis.example:6380/2');
    expect(redacted).toBe('redis://alice:***@redis.example:6380/2');
    expect(redacted).not.toContain('s3cret');
  });

  it('hides a password given without a user', () => {
    const redacted = redactUrl('rediss://:hunter2@10.0.0.5:6379');
    expect(redacted).not.toContain('hunter2');
    expect(redacted).toBe('rediss://:***@10.0.0.5:6379');
  });

  it('leaves a URL without credentials unchanged', () => {
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });

  it('hides a password containing "@" and ":"', () => {
    const redacted = redactUrl('redis://bob:p@ss:word@host:6379');
    expect(redacted).not.toContain('ss:word');
    expect(redacted).not.toContain('p@ss');
    expect(redacted).toContain('host:6379');
  });
});
