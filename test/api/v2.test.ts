import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW, parityFixture, uniqueRow } from '../helpers/fixtures.js';
import { loose } from '../helpers/live-clients.js';
import { createStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let modelDir: string;

beforeAll(async () => {
  // Shipped models plus the free-dimension fixture, in one repository.
  modelDir = mkdtempSync(join(tmpdir(), 'inferq-v2-'));
  for (const name of ['breast-cancer', 'digits-cnn'])
    cpSync(`models/${name}`, join(modelDir, name), { recursive: true });
  cpSync('test/fixtures/models/add-free', join(modelDir, 'add-free'), { recursive: true });
  stack = await createStack({ env: { MODEL_DIR: modelDir, MAX_BODY_BYTES: '200000' } });
});

afterAll(async () => {
  await stack?.close();
  if (modelDir) rmSync(modelDir, { recursive: true, force: true });
});

const infer = (model: string, body: unknown, version?: string) =>
  stack.post(`/v2/models/${model}${version ? `/versions/${version}` : ''}/infer`, body);

const rows = (data: number[][]) => ({
  inputs: [{ name: 'input', shape: [data.length, 30], datatype: 'FP32', data }],
});

async function expectV2Error(res: Response, status: number, message: RegExp): Promise<void> {
  expect(res.status).toBe(status);
  const body = await res.json().then(loose);
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toMatch(message);
}

describe('Open Inference Protocol: server and model metadata', () => {
  it('describes the server with the package version', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    const body = await (await stack.request('/v2')).json().then(loose);
    expect(body).toEqual({ name: 'inferq', version: pkg.version, extensions: [] });
  });

  it('answers liveness and readiness', async () => {
    expect(await (await stack.request('/v2/health/live')).json().then(loose)).toEqual({
      live: true,
    });
    const ready = await stack.request('/v2/health/ready');
    expect(ready.status).toBe(200);
    expect(await ready.json().then(loose)).toEqual({ ready: true });
  });

  it('gives the metadata of a model and of a version, shapes from the ONNX file', async () => {
    const expected = {
      name: 'digits-cnn',
      versions: ['1.0.0'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 1, 8, 8] }],
      outputs: [
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
      ],
    };
    expect(await (await stack.request('/v2/models/digits-cnn')).json().then(loose)).toEqual(
      expected,
    );
    const v = await stack.request('/v2/models/digits-cnn/versions/1.0.0');
    expect(await v.json().then(loose)).toEqual(expected);
    const bc = await (await stack.request('/v2/models/breast-cancer')).json().then(loose);
    expect(bc.versions).toEqual(['1.1.0', '1.0.0']);
  });

  it('answers model readiness with and without a version', async () => {
    expect(
      await (await stack.request('/v2/models/breast-cancer/ready')).json().then(loose),
    ).toEqual({
      name: 'breast-cancer',
      ready: true,
    });
    const v = await stack.request('/v2/models/breast-cancer/versions/1.0.0/ready');
    expect(await v.json().then(loose)).toEqual({ name: 'breast-cancer', ready: true });
  });

  it('answers unknown models, versions and routes with 404 {"error"}', async () => {
    await expectV2Error(await stack.request('/v2/models/nope'), 404, /Model "nope" does not exist/);
    await expectV2Error(
      await stack.request('/v2/models/breast-cancer/versions/9.9.9/ready'),
      404,
      /no served version "9.9.9"/,
    );
    await expectV2Error(await infer('nope', rows([BREAST_CANCER_ROW])), 404, /nope/);
    await expectV2Error(await stack.request('/v2/repository/index'), 404, /No route/);
  });
});

describe('Open Inference Protocol: infer', () => {
  it('serves the digits CNN on [N,1,8,8] images, nested and flat, matching the fixture', async () => {
    const fixture = parityFixture('digits-cnn', '1.0.0');
    const images = fixture.rows as number[][][][];
    const nested = await infer('digits-cnn', {
      id: 'nested-1',
      inputs: [{ name: 'image', shape: [3, 1, 8, 8], datatype: 'FP32', data: images.slice(0, 3) }],
    });
    const flat = await infer('digits-cnn', {
      inputs: [
        { name: 'image', shape: [3, 1, 8, 8], datatype: 'FP32', data: images.slice(3, 6).flat(3) },
      ],
    });
    for (const [res, from] of [
      [nested, 0],
      [flat, 3],
    ] as const) {
      expect(res.status).toBe(200);
      const body = await res.json().then(loose);
      expect(body.id).toBe(from === 0 ? 'nested-1' : undefined);
      expect(body.model_name).toBe('digits-cnn');
      expect(body.model_version).toBe('1.0.0');
      const probs = body.outputs.find((o: any) => o.name === 'probabilities');
      expect(probs).toMatchObject({ shape: [3, 10], datatype: 'FP32' });
      const want = fixture.probabilities!.slice(from, from + 3).flat();
      probs.data.forEach((p: number, i: number) =>
        expect(Math.abs(p - want[i]!)).toBeLessThan(1e-5),
      );
      const labels = body.outputs.find((o: any) => o.name === 'label');
      expect(labels).toEqual({
        name: 'label',
        shape: [3],
        datatype: 'INT64',
        data: fixture.labels!.slice(from, from + 3),
      });
    }
  });

  it('answers only the requested outputs, for the default or a pinned version', async () => {
    const body = {
      id: 'bc',
      ...rows([BREAST_CANCER_ROW, uniqueRow(9)]),
      outputs: [{ name: 'probabilities' }],
    };
    const res = await infer('breast-cancer', body);
    expect(res.status).toBe(200);
    const out = await res.json().then(loose);
    expect(out).toMatchObject({ model_name: 'breast-cancer', model_version: '1.1.0', id: 'bc' });
    expect(out.outputs.map((o: any) => o.name)).toEqual(['probabilities']);
    expect(out.outputs[0].shape).toEqual([2, 2]);
    const v1 = await (
      await stack.post('/v1/models/breast-cancer/predict', { features: BREAST_CANCER_ROW })
    )
      .json()
      .then(loose);
    expect(out.outputs[0].data.slice(0, 2)).toEqual(v1.probabilities);
    const pinned = await (await infer('breast-cancer', body, '1.0.0')).json().then(loose);
    expect(pinned.model_version).toBe('1.0.0');
    expect(pinned.outputs[0].data).not.toEqual(out.outputs[0].data);
  });

  it('runs a model with two inputs and free dimensions through the direct path', async () => {
    const before = stack.worker!.batchSizes.length;
    const a = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const res = await infer('add-free', {
      inputs: [
        { name: 'a', shape: [2, 3], datatype: 'FP32', data: a },
        { name: 'b', shape: [2, 3], datatype: 'FP32', data: [10, 20, 30, 40, 50, 60] },
      ],
    });
    expect(res.status).toBe(200);
    expect((await res.json().then(loose)).outputs).toEqual([
      { name: 'sum', shape: [2, 3], datatype: 'FP32', data: [11, 22, 33, 44, 55, 66] },
    ]);
    const other = await infer('add-free', {
      inputs: [
        { name: 'b', shape: [1, 5], datatype: 'FP32', data: [[1, 1, 1, 1, 1]] },
        { name: 'a', shape: [1, 5], datatype: 'FP32', data: [0.5, 1.5, 2.5, 3.5, 4.5] },
      ],
    });
    expect((await other.json().then(loose)).outputs[0]).toEqual({
      name: 'sum',
      shape: [1, 5],
      datatype: 'FP32',
      data: [1.5, 2.5, 3.5, 4.5, 5.5],
    });
    expect(stack.worker!.batchSizes.length - before).toBe(2);
    // The /v1 row API cannot take it and says where to go.
    const v1 = await stack.post('/v1/models/add-free/predict', { features: [1, 2] });
    expect(v1.status).toBe(422);
    expect((await v1.json().then(loose)).error.message).toMatch(/\/v2\/models\/\{model\}\/infer/);
  });

  it('answers a repeated infer from the cache without running inference', async () => {
    const body = rows([uniqueRow(31_337)]);
    const first = await (await infer('breast-cancer', body)).json().then(loose);
    const runs = stack.worker!.batchSizes.length;
    const second = await infer('breast-cancer', body);
    expect(second.status).toBe(200);
    expect(await second.json().then(loose)).toEqual(first);
    const direct = {
      inputs: [
        { name: 'a', shape: [1, 2], datatype: 'FP32', data: [7, 8] },
        { name: 'b', shape: [1, 2], datatype: 'FP32', data: [1, 1] },
      ],
    };
    expect((await infer('add-free', direct)).status).toBe(200);
    const afterDirect = stack.worker!.batchSizes.length;
    expect(afterDirect).toBe(runs + 1);
    expect((await (await infer('add-free', direct)).json().then(loose)).outputs[0].data).toEqual([
      8, 9,
    ]);
    expect(stack.worker!.batchSizes.length).toBe(afterDirect);
  });
});

describe('Open Inference Protocol: errors are {"error": "..."}', () => {
  const image = (over: Record<string, unknown>) => ({
    inputs: [
      { name: 'image', shape: [1, 1, 8, 8], datatype: 'FP32', data: Array(64).fill(0), ...over },
    ],
  });

  it('rejects shape, datatype and size mismatches with 400', async () => {
    await expectV2Error(
      await infer('breast-cancer', {
        inputs: [{ name: 'input', shape: [1, 29], datatype: 'FP32', data: Array(29).fill(1) }],
      }),
      400,
      /dimension 1 of shape \[1, 29\] must be 30/,
    );
    await expectV2Error(
      await infer('digits-cnn', image({ shape: [1, 64] })),
      400,
      /has 2 dimensions, the model takes 4/,
    );
    await expectV2Error(
      await infer('digits-cnn', image({ datatype: 'INT64' })),
      400,
      /datatype must be FP32, got INT64/,
    );
    await expectV2Error(
      await infer('digits-cnn', image({ data: Array(63).fill(0) })),
      400,
      /needs 64 values, got 63/,
    );
    await expectV2Error(
      await infer('digits-cnn', image({ data: [[[Array(8).fill(0)]]] })),
      400,
      /dimension 2 holds 1 values, shape says 8/,
    );
    await expectV2Error(
      await infer('digits-cnn', image({ data: [...Array(63).fill(0), 'x'] })),
      400,
      /value "x" must be a number/,
    );
  });

  it('rejects unknown and missing inputs, unknown outputs and a bad body with 400', async () => {
    await expectV2Error(
      await infer('digits-cnn', image({ name: 'pixels' })),
      400,
      /"pixels" is not an input/,
    );
    await expectV2Error(
      await infer('add-free', {
        inputs: [{ name: 'a', shape: [1, 1], datatype: 'FP32', data: [1] }],
      }),
      400,
      /missing input\(s\) of add-free: b/,
    );
    await expectV2Error(
      await infer('digits-cnn', { ...image({}), outputs: [{ name: 'logits' }] }),
      400,
      /"logits" is not an output/,
    );
    await expectV2Error(await infer('digits-cnn', '{"inputs": ['), 400, /not valid JSON/);
    await expectV2Error(await infer('digits-cnn', { inputs: [] }), 400, /at least one input/);
  });

  it('refuses a body over MAX_BODY_BYTES with 413', async () => {
    const big = image({ data: Array(64).fill(0.123456789), pad: 'x'.repeat(250_000) });
    await expectV2Error(await infer('digits-cnn', big), 413, /larger than 200000 bytes/);
  });
});
