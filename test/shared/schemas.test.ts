import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/shared/errors.js';
import {
  JobRequestSchema,
  parseOrThrow,
  PredictRequestSchema,
  toInput,
} from '../../src/shared/schemas.js';
import { LiveRequestSchema } from '../../src/shared/ws-schemas.js';

/** What `fn` throws, as an ApiError. */
function thrown(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('nothing was thrown');
}

const validate = (body: unknown, rowSize = 30, maxInstances = 1000) =>
  toInput(parseOrThrow(PredictRequestSchema, body), rowSize, maxInstances);

describe('request schemas check sizes before elements', () => {
  it('names the wrong width of a row of a million invalid values, not its first bad value', () => {
    const error = thrown(() =>
      validate({ features: Array.from({ length: 1_000_000 }, () => 'x') }),
    );
    expect(error.code).toBe('validation_error');
    expect(error.details).toEqual([
      { path: 'features', message: 'expected 30 features, got 1000000' },
    ]);
  });

  it('counts instances before measuring or reading any of them', () => {
    const bad = Array.from({ length: 1001 }, () => ['x']);
    const error = thrown(() => validate({ instances: bad }));
    expect(error.message).toBe('At most 1000 instances per request, got 1001.');
    const wide = thrown(() => validate({ instances: [Array(30).fill('x'), [1, 2]] }));
    expect(wide.details?.[0]).toEqual({
      path: 'instances[1]',
      message: 'expected 30 features, got 2',
    });
  });

  it('then names the first bad value of a row of the right width, with its path', () => {
    const row = Array.from({ length: 30 }, (_, i) => i);
    expect(thrown(() => validate({ features: [...row.slice(1), 'x'] })).details?.[0]).toEqual({
      path: 'features[29]',
      message: 'must be a number',
    });
    expect(
      thrown(() => validate({ instances: [row, [...row.slice(1), 1e39]] })).details?.[0],
    ).toEqual({
      path: 'instances[1][29]',
      message: 'is outside the float32 range',
    });
    expect(thrown(() => validate({ features: [...row.slice(1), Infinity] })).message).toContain(
      'finite',
    );
    expect(thrown(() => validate({ instances: [row, 7] })).details?.[0]).toEqual({
      path: 'instances[1]',
      message: 'must be an array of numbers',
    });
    expect(thrown(() => validate({ instances: [] })).details?.[0]?.path).toBe('instances');
    expect(thrown(() => validate({ features: 'x' })).details?.[0]?.path).toBe('features');
  });

  it('refuses 5 million values of the wrong width in milliseconds, not seconds', () => {
    const body = { features: Array.from({ length: 5_000_000 }, (_, i) => i % 10) };
    for (const schema of [PredictRequestSchema, JobRequestSchema, LiveRequestSchema]) {
      const withFields = { ...body, model: 'breast-cancer', ref: 'r' };
      const started = performance.now();
      const error = thrown(() => toInput(parseOrThrow(schema, withFields), 30, 1000));
      const elapsedMs = performance.now() - started;
      expect(error.details?.[0]?.message).toBe('expected 30 features, got 5000000');
      // Checking every element with zod took 1-2.5 s here; the length check takes well under 1 ms.
      expect(elapsedMs).toBeLessThan(100);
    }
  });

  it('accepts valid rows and flattens them as float32 and as sent', () => {
    const input = validate(
      {
        instances: [
          [1, 2.5],
          [3, 4],
        ],
      },
      2,
    );
    expect(input.rows).toBe(2);
    expect([...input.values]).toEqual([1, 2.5, 3, 4]);
    expect(input.flat).toEqual([1, 2.5, 3, 4]);
    expect(input.single).toBe(false);
  });
});
