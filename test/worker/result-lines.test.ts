import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRepository, type ModelVersion } from '../../src/shared/model-repository.js';
import { inputHash } from '../../src/shared/input-hash.js';
import { rowHashes } from '../../src/worker/chunks/chunk-rows.js';
import { classificationMembers } from '../../src/worker/chunks/result-lines.js';
import { ModelPool, type LoadedModel } from '../../src/worker/inference/model-pool.js';
import { toInstanceResults } from '../../src/worker/inference/output-shaping.js';
import { InferenceThread } from '../../src/worker/inference/sessions.js';
import type { ThreadTensor } from '../../src/worker/inference/thread-protocol.js';
import { testLogger } from '../helpers/env.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';

// The fast classification lines must be the very text the generic path (toInstanceResults, then
// JSON.stringify) makes, and step aside whenever that path would fail rows; the fast row hashes
// must be the online cache keys.

const ROWS = 1000;
let thread: InferenceThread;
let loaded: LoadedModel;

beforeAll(async () => {
  const logger = testLogger('worker');
  thread = new InferenceThread({ logger });
  const pool = new ModelPool({ thread, logger, maxBatchSize: ROWS, maxBatchDelayMs: 0 });
  const repository = await ModelRepository.scan('models', 3);
  const model = repository.resolve('breast-cancer');
  await pool.load(model);
  loaded = pool.get(model.name, model.version)!;
});

afterAll(async () => {
  await thread?.close();
});

async function outputsOf(rows: number): Promise<Record<string, ThreadTensor>> {
  const values = new Float32Array(rows * 30);
  for (let r = 0; r < rows; r++) {
    const scale = 0.2 + (r % 50) / 40; // small rows read benign, large ones malignant
    const row = BREAST_CANCER_ROW.map((v, i) => v * scale * (0.9 + ((r + i * 13) % 20) / 100));
    row[3] = 300 + r; // an integer-valued feature: every row a distinct input
    values.set(row, r * 30);
  }
  return (await loaded.batcher.submit(rows, values)).outputs;
}

const generic = (model: ModelVersion, outputs: Record<string, ThreadTensor>, rows: number) =>
  toInstanceResults(model, outputs, rows, 'task').map((r) => JSON.stringify(r).slice(1, -1));

describe('classificationMembers', () => {
  it('writes exactly what toInstanceResults + JSON.stringify write, for 1,000 rows', async () => {
    const outputs = await outputsOf(ROWS);
    const fast = classificationMembers(loaded.model, outputs, ROWS);
    expect(fast).toHaveLength(ROWS);
    expect(fast).toEqual(generic(loaded.model, outputs, ROWS));
    const labels = new Set(fast!.map((m) => /"label":"(\w+)"/.exec(m)?.[1]));
    expect(labels).toEqual(new Set(loaded.model.labels));
  });

  it('leaves out the label when the model names none, like the generic path', async () => {
    const outputs = await outputsOf(10);
    const unlabelled = { ...loaded.model, labels: undefined };
    const fast = classificationMembers(unlabelled, outputs, 10);
    expect(fast).toEqual(generic(unlabelled, outputs, 10));
    expect(fast![0]).not.toContain('label');
  });

  it('steps aside for a non-finite value, and for models that are not classifiers', async () => {
    const outputs = await outputsOf(4);
    const probabilities = outputs.probabilities!;
    const data = Float32Array.from(probabilities.data as Float32Array);
    data[5] = Number.NaN;
    const broken = { ...outputs, probabilities: { ...probabilities, data } };
    expect(classificationMembers(loaded.model, broken, 4)).toBeUndefined();
    const regression = { ...loaded.model, task: 'regression' as const };
    expect(classificationMembers(regression, outputs, 4)).toBeUndefined();
  });
});

describe('rowHashes', () => {
  it('gives every row the key of the same one-row online input (inputHash)', () => {
    const values = new Float32Array(50 * 30);
    for (let r = 0; r < 50; r++)
      values.set(
        BREAST_CANCER_ROW.map((v) => v + r),
        r * 30,
      );
    const hashes = rowHashes(loaded.model, values, 10, 50);
    expect(hashes).toHaveLength(40);
    hashes.forEach((h, i) => {
      const row = values.subarray((10 + i) * 30, (11 + i) * 30);
      expect(h).toBe(inputHash(loaded.model.name, loaded.model.version, 1, row));
    });
  });
});
