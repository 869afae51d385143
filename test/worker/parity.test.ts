import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRepository } from '../../src/shared/model-repository.js';
import type { BatchSlice } from '../../src/worker/inference/micro-batcher.js';
import { ModelPool } from '../../src/worker/inference/model-pool.js';
import { toInstanceResults } from '../../src/worker/inference/output-shaping.js';
import { InferenceThread } from '../../src/worker/inference/sessions.js';
import { testLogger } from '../helpers/env.js';
import { parityFixture, type ParityFixture } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

const ABS_TOLERANCE = 1e-5;

const FIXTURES: ParityFixture[] = readdirSync('test/fixtures/parity')
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => {
    const m = /^(.+)-(\d+\.\d+\.\d+)\.json$/.exec(f);
    if (!m?.[1] || !m[2]) throw new Error(`unexpected fixture name ${f}`);
    return parityFixture(m[1], m[2]);
  });

/** One fixture row flattened row-major (digits-cnn rows are [1][8][8] images). */
const flatRow = (row: unknown): number[] =>
  (Array.isArray(row) ? row.flat(Infinity as 1) : [row]) as number[];

function expectClose(actual: number, expected: number, tolerance: number, what: string): void {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(
    tolerance,
  );
}

function rowsOf(slice: BatchSlice, name: string): number[][] {
  const t = slice.outputs[name];
  if (!t) throw new Error(`no output "${name}"`);
  const rows = t.dims[0] ?? 0;
  const values = Array.from(t.data as ArrayLike<number | bigint>, Number);
  const per = values.length / rows;
  return Array.from({ length: rows }, (_, i) => values.slice(i * per, (i + 1) * per));
}

/** Checks the outputs of the fixture's rows `from..from+n` against its references. */
function expectParity(fixture: ParityFixture, from: number, slice: BatchSlice): void {
  const what = `${fixture.model}@${fixture.version}`;
  if (fixture.probabilities) {
    const probs = rowsOf(slice, 'probabilities');
    probs.forEach((row, i) => {
      const ref = fixture.probabilities?.[from + i] ?? [];
      expect(row).toHaveLength(ref.length);
      row.forEach((p, k) =>
        expectClose(p, ref[k] ?? NaN, ABS_TOLERANCE, `${what} row ${from + i} class ${k}`),
      );
    });
    const labels = rowsOf(slice, 'label').map((r) => r[0]);
    expect(labels).toEqual(fixture.labels?.slice(from, from + labels.length));
  }
  if (fixture.predictions) {
    const preds = rowsOf(slice, 'prediction').map((r) => r[0] ?? NaN);
    preds.forEach((p, i) => {
      const ref = fixture.predictions?.[from + i] ?? NaN;
      expectClose(p, ref, ABS_TOLERANCE * Math.abs(ref), `${what} row ${from + i}`);
    });
  }
}

// Runs of up to INLINE_INFERENCE_ROWS rows go to a session on the main thread, larger ones to
// the inference thread: both must give the references' outputs.
for (const inlineRows of [0, 64]) {
  describe(`parity of onnxruntime with the reference outputs (inline runs up to ${inlineRows} rows)`, () => {
    let thread: InferenceThread;
    let pool: ModelPool;
    let repo: ModelRepository;
    const batchSizes: number[] = [];

    beforeAll(async () => {
      repo = await ModelRepository.scan('models', 3);
      thread = new InferenceThread({ logger: testLogger('thread') });
      pool = new ModelPool({
        thread,
        logger: testLogger('pool'),
        maxBatchSize: 64,
        maxBatchDelayMs: 2,
        onBatch: (_m, rows) => batchSizes.push(rows),
        inlineRows,
      });
      await pool.loadAll(repo);
    });

    afterAll(async () => {
      await thread.close();
    });

    it('has a fixture for every bundled model version', () => {
      expect(FIXTURES.map((f) => `${f.model}@${f.version}`).sort()).toEqual(pool.keys().sort());
      for (const f of FIXTURES) expect(f.rows.length).toBeGreaterThanOrEqual(20);
      // Every bundled model is small: each has its main-thread session exactly when asked for.
      for (const f of FIXTURES) {
        expect(pool.get(f.model, f.version)?.inline !== undefined).toBe(inlineRows > 0);
      }
    });

    it.each(FIXTURES.map((f) => [`${f.model}@${f.version}`, f] as const))(
      '%s matches its fixture row by row when rows are batched together',
      async (_name, fixture) => {
        const loaded = pool.get(fixture.model, fixture.version);
        if (!loaded) throw new Error('model not loaded');
        const before = batchSizes.length;
        const slices = await Promise.all(
          fixture.rows.map((row) => loaded.batcher.submit(1, Float32Array.from(flatRow(row)))),
        );
        slices.forEach((slice, i) => expectParity(fixture, i, slice));
        // 25 concurrent submissions of one row share runs: fewer runs than rows.
        expect(batchSizes.length - before).toBeLessThan(fixture.rows.length);
      },
    );

    it.each(FIXTURES.map((f) => [`${f.model}@${f.version}`, f] as const))(
      '%s matches its fixture when all rows go in one submission, and shapes results by task',
      async (_name, fixture) => {
        const loaded = pool.get(fixture.model, fixture.version);
        if (!loaded) throw new Error('model not loaded');
        const values = Float32Array.from(fixture.rows.flatMap(flatRow));
        expect(values.length).toBe(fixture.rows.length * loaded.model.rowSize);
        const slice = await loaded.batcher.submit(fixture.rows.length, values);
        expectParity(fixture, 0, slice);
        const results = toInstanceResults(loaded.model, slice.outputs, fixture.rows.length, 'task');
        results.forEach((r, i) => {
          if (fixture.labels) {
            expect(r).toMatchObject({ prediction: fixture.labels[i] });
            if ('label' in r) expect(r.label).toBe(loaded.model.labels?.[fixture.labels[i] ?? -1]);
          } else {
            expect(r).toHaveProperty('prediction');
            const ref = fixture.predictions?.[i] ?? NaN;
            expectClose(
              (r as { prediction: number }).prediction,
              ref,
              ABS_TOLERANCE * Math.abs(ref),
              `result ${i}`,
            );
          }
        });
      },
    );
  });
}

describe('parity through the HTTP path', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await createStack();
  });

  afterAll(async () => {
    await stack.close();
  });

  it('answers breast-cancer 1.0.0 instances with the fixture probabilities and labels', async () => {
    const fixture = parityFixture('breast-cancer', '1.0.0');
    const res = await stack.post('/v1/models/breast-cancer/predict?version=1.0.0', {
      instances: fixture.rows,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      model: string;
      version: string;
      cached: boolean;
      predictions: {
        prediction: number;
        label: string;
        confidence: number;
        probabilities: number[];
      }[];
    };
    expect(body).toMatchObject({ model: 'breast-cancer', version: '1.0.0', cached: false });
    expect(body.predictions).toHaveLength(fixture.rows.length);
    body.predictions.forEach((p, i) => {
      const ref = fixture.probabilities?.[i] ?? [];
      p.probabilities.forEach((v, k) =>
        expectClose(v, ref[k] ?? NaN, ABS_TOLERANCE, `instance ${i} class ${k}`),
      );
      expect(p.prediction).toBe(fixture.labels?.[i]);
      expect(p.label).toBe(['malignant', 'benign'][p.prediction]);
      expect(p.confidence).toBe(Math.max(...p.probabilities));
    });
  });
});
