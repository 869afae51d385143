import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protoPkg from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/env.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import { parseExposition, valueOf } from '../helpers/prometheus.js';
import { createStack, type TestStack } from '../helpers/stack.js';

// Response bodies are untyped JSON.
const json = async (res: Response): Promise<any> => res.json();

const SOURCE = 'models/breast-cancer/1.1.0';
const PREDICT = '/v1/models/breast-cancer/predict';
const ADMIN = { authorization: 'Bearer reload-admin' };

function addVersion(dir: string, version: string): void {
  cpSync(SOURCE, join(dir, 'breast-cancer', version), { recursive: true });
}

/** A version whose model.onnx is not an ONNX file at all. */
function addGarbage(dir: string, version: string): void {
  mkdirSync(join(dir, 'breast-cancer', version), { recursive: true });
  writeFileSync(join(dir, 'breast-cancer', version, 'model.onnx'), 'this is not a model');
}

/** A version whose ONNX metadata reads fine but whose graph onnxruntime refuses to load. */
function addUnloadable(dir: string, version: string): void {
  const { onnx } = protoPkg;
  const model = onnx.ModelProto.decode(readFileSync(join(SOURCE, 'model.onnx')));
  for (const node of model.graph?.node ?? []) node.opType = 'NoSuchOperator';
  const target = join(dir, 'breast-cancer', version);
  mkdirSync(target, { recursive: true });
  writeFileSync(join(target, 'model.onnx'), onnx.ModelProto.encode(model).finish());
}

function tempModels(): string {
  const dir = mkdtempSync(join(tmpdir(), 'inferq-models-'));
  addVersion(dir, '1.0.0');
  return dir;
}

async function reload(stack: TestStack): Promise<any> {
  const res = await stack.request('/admin/models/reload', { method: 'POST', headers: ADMIN });
  expect(res.status).toBe(200);
  return res.json();
}

const predict = (stack: TestStack, version?: string) =>
  stack.post(
    PREDICT,
    { features: BREAST_CANCER_ROW },
    version ? { 'x-model-version': version } : {},
  );

describe('model versions added at run time (admin reload)', () => {
  let dir: string;
  let stack: TestStack;
  beforeAll(async () => {
    dir = tempModels();
    stack = await createStack({
      env: {
        MODEL_DIR: dir,
        MODEL_RESCAN_MS: '0',
        MODEL_VERSIONS_KEPT: '2',
        ADMIN_TOKEN: 'reload-admin',
        CACHE_TTL_S: '0',
      },
    });
    await stack.worker!.ops.subscribed();
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a version folder added after start once POST /admin/models/reload is called', async () => {
    expect((await predict(stack, '1.2.0')).status).toBe(404);
    addVersion(dir, '1.2.0');
    const body = await reload(stack);
    expect(body.added).toEqual(['breast-cancer@1.2.0']);
    expect(body.notified).toBeGreaterThanOrEqual(2);
    await eventually(() => stack.worker!.pool.get('breast-cancer', '1.2.0') !== undefined);
    const res = await predict(stack, '1.2.0');
    expect(res.status).toBe(200);
    expect((await json(res)).version).toBe('1.2.0');
    const models = await json(await stack.request('/v1/models'));
    expect(models.models[0]).toMatchObject({ default: '1.2.0', versions: ['1.2.0', '1.0.0'] });
  });

  it('skips a version whose model.onnx is garbage: it is not listed and the previous default keeps serving', async () => {
    addGarbage(dir, '1.3.0');
    const body = await reload(stack);
    expect(body.added).toEqual([]);
    const entry = (await json(await stack.request('/v1/models'))).models[0];
    expect(entry).toMatchObject({ default: '1.2.0', versions: ['1.2.0', '1.0.0'] });
    const res = await predict(stack);
    expect(res.status).toBe(200);
    expect((await json(res)).version).toBe('1.2.0');
    expect((await predict(stack, '1.3.0')).status).toBe(404);
  });

  it('loads a version the API saw first when a job asks for it, and unloads versions beyond MODEL_VERSIONS_KEPT', async () => {
    addVersion(dir, '1.4.0');
    // Only the API rescans (no reload published): the worker finds 1.4.0 when a job names it.
    await stack.api.deps.repository.reload();
    const res = await predict(stack, '1.4.0');
    expect(res.status).toBe(200);
    expect((await json(res)).version).toBe('1.4.0');
    // Newest two kept: 1.4.0 and 1.2.0; 1.0.0 is out of the window everywhere.
    expect(stack.worker!.pool.keys().sort()).toEqual([
      'breast-cancer@1.2.0',
      'breast-cancer@1.4.0',
    ]);
    const old = await predict(stack, '1.0.0');
    expect(old.status).toBe(404);
    expect((await json(old)).error.code).toBe('version_not_found');
  });
});

describe('model versions found by the periodic rescan', () => {
  let dir: string;
  let stack: TestStack;
  beforeAll(async () => {
    dir = tempModels();
    stack = await createStack({
      env: { MODEL_DIR: dir, MODEL_RESCAN_MS: '200', CACHE_TTL_S: '0' },
    });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists and loads a new version folder within a few rescans, without any call', async () => {
    addVersion(dir, '2.0.0');
    await eventually(() => stack.worker!.pool.get('breast-cancer', '2.0.0') !== undefined, 10_000);
    await eventually(async () => {
      const body = await json(await stack.request('/v1/models'));
      return body.models[0]?.default === '2.0.0';
    }, 10_000);
    const res = await predict(stack);
    expect(res.status).toBe(200);
    expect((await json(res)).version).toBe('2.0.0');
  });

  it('keeps the older versions serving when a new one fails to load into onnxruntime', async () => {
    addUnloadable(dir, '3.0.0');
    const registry = stack.worker!.metrics.registry;
    await eventually(async () => {
      const exposition = parseExposition(await registry.metrics());
      return (
        valueOf(exposition, 'inferq_model_load_failures_total', {
          model: 'breast-cancer',
          version: '3.0.0',
        }) === 1
      );
    }, 10_000);
    expect(stack.worker!.pool.get('breast-cancer', '3.0.0')).toBeUndefined();
    expect(stack.worker!.pool.get('breast-cancer', '2.0.0')).toBeDefined();
    const res = await predict(stack, '2.0.0');
    expect(res.status).toBe(200);
    // Not retried on every rescan: the failure is remembered until model.onnx changes.
    await new Promise((r) => setTimeout(r, 600));
    const exposition = parseExposition(await registry.metrics());
    expect(
      valueOf(exposition, 'inferq_model_load_failures_total', {
        model: 'breast-cancer',
        version: '3.0.0',
      }),
    ).toBe(1);
  });
});
