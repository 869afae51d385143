import { describe, expect, it } from 'vitest';
import { ModelRepository } from '../../src/shared/model-repository.js';
import { InlineSession } from '../../src/worker/inference/inline-session.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';

/** The main thread's session of small runs (INLINE_INFERENCE_ROWS), on a real ONNX model. */
describe('InlineSession', () => {
  it('answers runs in the inference thread shape, and is released only after its runs', async () => {
    const repo = await ModelRepository.scan('models', 3);
    const model = repo.resolve('breast-cancer');
    const session = await InlineSession.create(model.onnxPath);
    const input = model.inputs[0]!;
    const feeds = (rows: number) => ({
      [input.name]: {
        type: 'float32',
        data: Float32Array.from({ length: rows * 30 }, (_, i) => BREAST_CANCER_ROW[i % 30]!),
        dims: [rows, 30],
      },
    });
    const runs = [1, 8, 64].map((rows) => session.run(feeds(rows)));
    const released = session.release();
    const results = await Promise.all(runs);
    await released;
    results.forEach((result, i) => {
      const rows = [1, 8, 64][i]!;
      expect(result.ms).toBeGreaterThanOrEqual(0);
      expect(result.outputs.probabilities?.dims).toEqual([rows, 2]);
      expect(result.outputs.label?.dims[0]).toBe(rows);
      // The same row gives the same answer in every run, whatever the run's size.
      expect(Array.from(result.outputs.probabilities!.data as Float32Array).slice(0, 2)).toEqual(
        Array.from(results[0]!.outputs.probabilities!.data as Float32Array).slice(0, 2),
      );
    });
    await expect(session.run(feeds(1))).rejects.toThrow(/released/);
  });
});
