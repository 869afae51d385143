import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/shared/errors.js';
import type { Logger } from '../../src/shared/logger.js';
import { ModelRepository } from '../../src/shared/model-repository.js';

const BREAST_CANCER_ONNX = 'models/breast-cancer/1.0.0/model.onnx';

function apiErrorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected an ApiError');
}

/** Writes a version folder under `dir`: a copy of a real model, or the given bytes. */
function writeVersion(
  dir: string,
  name: string,
  version: string,
  onnx: string | Buffer = BREAST_CANCER_ONNX,
): void {
  const folder = join(dir, name, version);
  mkdirSync(folder, { recursive: true });
  if (typeof onnx === 'string') copyFileSync(onnx, join(folder, 'model.onnx'));
  else writeFileSync(join(folder, 'model.onnx'), onnx);
}

describe('ModelRepository.scan of models/', () => {
  let repo: ModelRepository;
  beforeAll(async () => {
    repo = await ModelRepository.scan('models', 3);
  });

  it('lists the four bundled models sorted by name', () => {
    expect(repo.size).toBe(4);
    expect(repo.list().map((m) => m.name)).toEqual([
      'breast-cancer',
      'diabetes',
      'digits',
      'digits-cnn',
    ]);
  });

  it('sorts versions newest first and makes the highest the default', () => {
    const entry = repo.model('breast-cancer');
    expect(entry.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    expect(entry.default).toBe('1.1.0');
    expect(repo.resolve('breast-cancer').version).toBe('1.1.0');
    expect(repo.resolve('breast-cancer', '1.0.0').version).toBe('1.0.0');
  });

  it('reads the breast-cancer input "input" FP32 [-1, 30] from the ONNX file', () => {
    const v = repo.resolve('breast-cancer', '1.0.0');
    expect(v.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 30] }]);
    expect(v.rowSize).toBe(30);
    expect(v.outputs.map((o) => o.name)).toEqual(['label', 'probabilities']);
    expect(v.outputs.find((o) => o.name === 'probabilities')).toEqual({
      name: 'probabilities',
      datatype: 'FP32',
      shape: [-1, 2],
    });
  });

  it('reads the digits-cnn input "image" [-1, 1, 8, 8] and a row size of 64', () => {
    const v = repo.resolve('digits-cnn');
    expect(v.inputs).toEqual([{ name: 'image', datatype: 'FP32', shape: [-1, 1, 8, 8] }]);
    expect(v.rowSize).toBe(64);
  });

  it('reads widths of digits (64) and diabetes (10), and tasks and labels from model.json', () => {
    expect(repo.resolve('digits').rowSize).toBe(64);
    const diabetes = repo.resolve('diabetes');
    expect(diabetes.rowSize).toBe(10);
    expect(diabetes.task).toBe('regression');
    const bc = repo.resolve('breast-cancer');
    expect(bc.task).toBe('classification');
    expect(bc.labels).toEqual(['malignant', 'benign']);
    expect(bc.features).toHaveLength(30);
  });

  it('serves every version when MODEL_VERSIONS_KEPT is 3', () => {
    expect(repo.served().map((v) => `${v.name}@${v.version}`)).toEqual([
      'breast-cancer@1.1.0',
      'breast-cancer@1.0.0',
      'diabetes@1.0.0',
      'digits@1.0.0',
      'digits-cnn@1.0.0',
    ]);
  });

  it('answers an unknown model with 404 model_not_found naming it', () => {
    const err = apiErrorOf(() => repo.resolve('no-such-model'));
    expect(err.code).toBe('model_not_found');
    expect(err.status).toBe(404);
    expect(err.message).toContain('no-such-model');
    expect(apiErrorOf(() => repo.model('no-such-model')).code).toBe('model_not_found');
  });

  it('answers an unknown version with 404 version_not_found', () => {
    const err = apiErrorOf(() => repo.resolve('breast-cancer', '9.9.9'));
    expect(err.code).toBe('version_not_found');
    expect(err.status).toBe(404);
  });
});

describe('ModelRepository.scan with MODEL_VERSIONS_KEPT=1', () => {
  it('lists breast-cancer 1.0.0 but refuses to resolve it with version_not_found', async () => {
    const repo = await ModelRepository.scan('models', 1);
    const entry = repo.model('breast-cancer');
    expect(entry.versions.map((v) => v.version)).toEqual(['1.1.0', '1.0.0']);
    expect(entry.versions.map((v) => v.served)).toEqual([true, false]);
    const err = apiErrorOf(() => repo.resolve('breast-cancer', '1.0.0'));
    expect(err.code).toBe('version_not_found');
    expect(err.message).toContain('1.1.0');
    expect(repo.resolve('breast-cancer').version).toBe('1.1.0');
    expect(repo.served().some((v) => v.name === 'breast-cancer' && v.version === '1.0.0')).toBe(
      false,
    );
  });
});

describe('ModelRepository.scan of a hand-made repository', () => {
  let dir: string;
  const logged: unknown[] = [];
  const logger = { error: (obj: unknown) => logged.push(obj) } as unknown as Logger;
  let repo: ModelRepository;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inferq-repo-'));
    writeVersion(dir, 'good', '1.2.0');
    writeVersion(dir, 'good', '1.10.0');
    writeVersion(dir, 'good', '1.9.0');
    writeVersion(dir, 'good', '2.0.0', Buffer.from('this is not an onnx file'));
    writeVersion(dir, 'broken', '1.0.0', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01, 0x02]));
    mkdirSync(join(dir, 'good', 'latest'), { recursive: true });
    mkdirSync(join(dir, 'no-onnx', '1.0.0'), { recursive: true });
    writeVersion(dir, 'Upper-Case', '1.0.0');
    writeVersion(dir, 'bad-card', '1.0.0');
    writeFileSync(join(dir, 'bad-card', '1.0.0', 'model.json'), '{ not json');
    repo = await ModelRepository.scan(dir, 3, logger);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('skips a broken model.onnx instead of failing the scan, and logs it', () => {
    expect(repo.list().map((m) => m.name)).toEqual(['good']);
    expect(repo.model('good').versions.map((v) => v.version)).not.toContain('2.0.0');
    expect(logged.length).toBeGreaterThanOrEqual(3);
    expect(logged).toContainEqual(expect.objectContaining({ model: 'broken', version: '1.0.0' }));
  });

  it('orders versions by semver, not by text (1.10.0 above 1.9.0)', () => {
    const entry = repo.model('good');
    expect(entry.versions.map((v) => v.version)).toEqual(['1.10.0', '1.9.0', '1.2.0']);
    expect(entry.default).toBe('1.10.0');
  });

  it('ignores folders that are not semver versions or valid model names', () => {
    expect(repo.model('good').versions.map((v) => v.version)).not.toContain('latest');
    expect(apiErrorOf(() => repo.model('Upper-Case')).code).toBe('model_not_found');
  });

  it('skips a version whose model.json is not valid JSON', () => {
    expect(apiErrorOf(() => repo.model('bad-card')).code).toBe('model_not_found');
    expect(logged).toContainEqual(expect.objectContaining({ model: 'bad-card', version: '1.0.0' }));
  });

  it('defaults the task to raw when model.json is absent', () => {
    expect(repo.resolve('good').task).toBe('raw');
  });

  it('finds no models in a folder that does not exist', async () => {
    const empty = await ModelRepository.scan(join(dir, 'missing'), 3);
    expect(empty.size).toBe(0);
    expect(empty.list()).toEqual([]);
  });
});
