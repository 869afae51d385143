import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  MicroBatcher,
  type BatchRun,
  type MicroBatcherOptions,
} from '../../src/worker/inference/micro-batcher.js';
import type { ThreadTensor } from '../../src/worker/inference/thread-protocol.js';

const ROW_SIZE = 3;

/** A tensor's values as plain numbers. */
const nums = (t: ThreadTensor | undefined): number[] =>
  Array.from((t?.data ?? []) as ArrayLike<number | bigint>, Number);

/** A stand-in model: `sum` = the row's sum, `pair` = [first value, -first value]; fails on a negative first value. */
function fakeModel() {
  const calls: number[][] = [];
  // Not async: the batcher calls run synchronously, so tests can see the call before any await.
  const run = (rows: number, values: Float32Array): Promise<BatchRun> => {
    const firsts: number[] = [];
    for (let r = 0; r < rows; r++) firsts.push(values[r * ROW_SIZE] ?? NaN);
    calls.push(firsts);
    if (firsts.some((v) => v < 0)) return Promise.reject(new Error('negative input'));
    const sum = new Float32Array(rows);
    const pair = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      sum[r] =
        (values[r * ROW_SIZE] ?? 0) +
        (values[r * ROW_SIZE + 1] ?? 0) +
        (values[r * ROW_SIZE + 2] ?? 0);
      pair[r * 2] = values[r * ROW_SIZE] ?? 0;
      pair[r * 2 + 1] = -(values[r * ROW_SIZE] ?? 0);
    }
    return Promise.resolve({
      outputs: {
        sum: { type: 'float32', data: sum, dims: [rows] },
        pair: { type: 'float32', data: pair, dims: [rows, 2] },
      },
      ms: 1.5,
    });
  };
  return { calls, run };
}

/** `n` rows whose first values are `start`, `start + 1`, ...; the other two values are 1 and 2. */
function rows(start: number, n: number): Float32Array {
  const values = new Float32Array(n * ROW_SIZE);
  for (let i = 0; i < n; i++) values.set([start + i, 1, 2], i * ROW_SIZE);
  return values;
}

function batcher(overrides: Partial<MicroBatcherOptions> = {}) {
  const model = fakeModel();
  const batches: number[] = [];
  const b = new MicroBatcher({
    maxBatchSize: 4,
    maxBatchDelayMs: 60_000,
    rowSize: ROW_SIZE,
    run: model.run,
    onBatch: (n) => batches.push(n),
    ...overrides,
  });
  return { b, calls: model.calls, batches };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('MicroBatcher', () => {
  it('runs at once when maxBatchSize rows are waiting, without waiting for the delay', async () => {
    const { b, calls, batches } = batcher({ maxBatchSize: 4 });
    const pending = [0, 1, 2].map((i) => b.submit(1, rows(i, 1)));
    expect(calls).toHaveLength(0);
    pending.push(b.submit(1, rows(3, 1)));
    expect(calls).toEqual([[0, 1, 2, 3]]);
    const slices = await Promise.all(pending);
    expect(slices.map((s) => s.batchSize)).toEqual([4, 4, 4, 4]);
    expect(batches).toEqual([4]);
  });

  it('runs a partial batch once maxBatchDelayMs has passed', async () => {
    vi.useFakeTimers();
    const { b, calls } = batcher({ maxBatchSize: 64, maxBatchDelayMs: 5 });
    const first = b.submit(1, rows(10, 1));
    await vi.advanceTimersByTimeAsync(3);
    const second = b.submit(2, rows(20, 2));
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([[10, 20, 21]]);
    const [a, c] = await Promise.all([first, second]);
    expect(a.batchSize).toBe(3);
    expect(c.batchSize).toBe(3);
  });

  it('counts the delay from the first submission of a batch, not the latest', async () => {
    vi.useFakeTimers();
    const { b, calls } = batcher({ maxBatchSize: 64, maxBatchDelayMs: 10 });
    const pending = [b.submit(1, rows(0, 1))];
    for (let t = 1; t < 10; t++) {
      await vi.advanceTimersByTimeAsync(1);
      pending.push(b.submit(1, rows(t, 1)));
    }
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toHaveLength(10);
    await Promise.all(pending);
  });

  it("gives each submitter its own rows' slice of every output", async () => {
    const { b } = batcher({ maxBatchSize: 6 });
    const [a, c, d] = await Promise.all([
      b.submit(1, rows(1, 1)),
      b.submit(3, rows(10, 3)),
      b.submit(2, rows(100, 2)),
    ]);
    expect(a?.outputs.sum).toEqual({ type: 'float32', data: new Float32Array([4]), dims: [1] });
    expect(a?.outputs.pair).toEqual({
      type: 'float32',
      data: new Float32Array([1, -1]),
      dims: [1, 2],
    });
    expect(nums(c?.outputs.sum)).toEqual([13, 14, 15]);
    expect(c?.outputs.pair?.dims).toEqual([3, 2]);
    expect(nums(c?.outputs.pair)).toEqual([10, -10, 11, -11, 12, -12]);
    expect(nums(d?.outputs.sum)).toEqual([103, 104]);
    expect(nums(d?.outputs.pair)).toEqual([100, -100, 101, -101]);
    for (const s of [a, c, d]) {
      expect(s?.batchSize).toBe(6);
      expect(s?.ms).toBe(1.5);
    }
  });

  it('flushes the waiting rows first when a submission would overflow the batch', async () => {
    const { b, calls } = batcher({ maxBatchSize: 4 });
    const first = b.submit(3, rows(0, 3));
    const second = b.submit(2, rows(10, 2));
    expect(calls).toEqual([[0, 1, 2]]);
    b.flush();
    expect(calls).toEqual([
      [0, 1, 2],
      [10, 11],
    ]);
    expect((await first).batchSize).toBe(3);
    expect((await second).batchSize).toBe(2);
  });

  it('runs a submission larger than maxBatchSize alone, in one run', async () => {
    const { b, calls, batches } = batcher({ maxBatchSize: 4 });
    const small = b.submit(1, rows(0, 1));
    const big = b.submit(10, rows(100, 10));
    const after = b.submit(1, rows(500, 1));
    b.flush();
    expect(calls.map((c) => c.length)).toEqual([1, 10, 1]);
    expect(calls[1]).toEqual([100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    const bigSlice = await big;
    expect(bigSlice.batchSize).toBe(10);
    expect(bigSlice.outputs.sum?.dims).toEqual([10]);
    expect(nums(bigSlice.outputs.sum)).toEqual([103, 104, 105, 106, 107, 108, 109, 110, 111, 112]);
    expect((await small).batchSize).toBe(1);
    expect((await after).batchSize).toBe(1);
    expect(batches).toEqual([1, 10, 1]);
  });

  it('fails only the bad submission of a failed batch, after re-running each alone', async () => {
    const { b, calls, batches } = batcher({ maxBatchSize: 3 });
    const good1 = b.submit(1, rows(1, 1));
    const bad = b.submit(1, rows(-5, 1));
    const good2 = b.submit(1, rows(7, 1));
    const [r1, rBad, r2] = await Promise.allSettled([good1, bad, good2]);
    expect(r1.status).toBe('fulfilled');
    expect(r2.status).toBe('fulfilled');
    expect(rBad.status).toBe('rejected');
    expect(rBad.status === 'rejected' && (rBad.reason as Error).message).toBe('negative input');
    expect(calls[0]).toEqual([1, -5, 7]);
    expect(calls.slice(1).sort((x, y) => (x[0] ?? 0) - (y[0] ?? 0))).toEqual([[-5], [1], [7]]);
    if (r1.status === 'fulfilled') {
      expect(r1.value.batchSize).toBe(1);
      expect(nums(r1.value.outputs.sum)).toEqual([4]);
    }
    if (r2.status === 'fulfilled') expect(nums(r2.value.outputs.sum)).toEqual([10]);
    expect(batches).toEqual([1, 1]);
  });

  it('rejects a lone submission whose run fails without running it again', async () => {
    const { b, calls } = batcher({ maxBatchSize: 1 });
    await expect(b.submit(1, rows(-1, 1))).rejects.toThrow('negative input');
    expect(calls).toEqual([[-1]]);
  });

  it('keeps working after a failed batch', async () => {
    const { b } = batcher({ maxBatchSize: 2 });
    await Promise.allSettled([b.submit(1, rows(-1, 1)), b.submit(1, rows(2, 1))]);
    const [x, y] = await Promise.all([b.submit(1, rows(3, 1)), b.submit(1, rows(4, 1))]);
    expect(x.batchSize).toBe(2);
    expect(nums(y.outputs.sum)).toEqual([7]);
  });
});

describe('MicroBatcher with runWhenIdle', () => {
  it('runs a lone submission at once when the model is idle, without waiting for the delay', async () => {
    const { b, calls } = batcher({ maxBatchSize: 64, maxBatchDelayMs: 60_000, runWhenIdle: true });
    const slice = await b.submit(1, rows(5, 1));
    expect(calls).toEqual([[5]]);
    expect(slice.batchSize).toBe(1);
  });

  it('gathers what arrives while a run is in flight into the next batch', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const model = fakeModel();
    const calls: number[][] = [];
    const b = new MicroBatcher({
      maxBatchSize: 64,
      maxBatchDelayMs: 60_000,
      rowSize: ROW_SIZE,
      runWhenIdle: true,
      run: async (n, values) => {
        calls.push(Array.from({ length: n }, (_, i) => values[i * ROW_SIZE] ?? NaN));
        if (calls.length === 1) await gate;
        return model.run(n, values);
      },
    });
    const first = b.submit(1, rows(0, 1));
    await new Promise((r) => setImmediate(r));
    const rest = [1, 2, 3].map((i) => b.submit(1, rows(i, 1)));
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([[0]]);
    release();
    const slices = await Promise.all([first, ...rest]);
    expect(calls).toEqual([[0], [1, 2, 3]]);
    expect(slices.map((s) => s.batchSize)).toEqual([1, 3, 3, 3]);
  });
});
