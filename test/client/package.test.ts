/**
 * The client package as a user gets it: `npm pack` of packages/client (its prepack builds it),
 * the tarball installed into an empty folder, then used from plain Node (ESM and require), from
 * TypeScript, and through its `inferq-client` bin, against a service running in this process.
 */
import { execFile } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BREAST_CANCER_ROW, uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER_PACKAGES = ['onnxruntime-node', 'bullmq', 'hono', 'ioredis', 'zod', 'pino', 'tsx'];

let dir: string; // the pack destination; the user's project is its app/ folder
let app: string;
let stack: TestStack;
let url: string;
let typecheck: Promise<{ stdout: string; stderr: string }>;

// The outer `npm test` exports its own settings (prefix, lifecycle) as npm_* variables: the
// user's npm must not see them.
function userEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_registry', 'npm_config_cache', 'npm_config_userconfig']);
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') || keep.has(k)),
  );
}

/** Runs a command in the user's project; rejects (with its output) on a non-zero exit. */
function inApp(file: string, args: string[], timeoutMs = 30_000) {
  return run(file, args, { cwd: app, env: userEnv(), timeout: timeoutMs, encoding: 'utf8' });
}

async function packAndInstall(): Promise<void> {
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], {
    cwd: join(root, 'packages/client'),
    env: userEnv(),
    timeout: 60_000,
    encoding: 'utf8',
  });
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [
    { filename: string },
  ];
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  await inApp(
    'npm',
    ['install', join(dir, filename), '--prefer-offline', '--no-audit', '--no-fund'],
    60_000,
  );
}

/** Bytes of every file under `path`, and the names of the packages installed there. */
function installed(path: string): { bytes: number; packages: string[] } {
  let bytes = 0;
  for (const e of readdirSync(path, { recursive: true, withFileTypes: true }))
    if (e.isFile()) bytes += statSync(join(e.parentPath ?? e.path, e.name)).size;
  const packages = readdirSync(path)
    .filter((n) => !n.startsWith('.'))
    .flatMap((n) => (n.startsWith('@') ? readdirSync(join(path, n)).map((s) => `${n}/${s}`) : [n]));
  return { bytes, packages };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inferq-client-pkg-'));
  app = join(dir, 'app');
  mkdirSync(app);
  const [started] = await Promise.all([createStack(), packAndInstall()]);
  stack = started;
  url = `http://127.0.0.1:${await stack.api.listen(0, '127.0.0.1')}`;
  // A TypeScript user's check, with the repository's compiler and Node types; it runs while
  // the other tests do.
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(TS_CONFIG));
  writeFileSync(join(app, 'use.ts'), TS_USE);
  typecheck = inApp(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'],
    60_000,
  );
  typecheck.catch(() => undefined);
}, 90_000);

afterAll(async () => {
  await typecheck?.catch(() => undefined);
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

const TS_CONFIG = {
  compilerOptions: {
    strict: true,
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    noEmit: true,
    skipLibCheck: false,
    types: ['node'],
    typeRoots: [join(root, 'node_modules/@types')],
  },
  files: ['use.ts'],
};

const TS_USE = `
import { InferqClient, InferqError, isAccepted, type BatchView, type SinglePrediction } from 'inferq-client';

const client = new InferqClient({ url: 'http://127.0.0.1:1', apiKey: 'k' });
export async function label(features: number[]): Promise<string | undefined> {
  const answer = await client.predict('breast-cancer', features, { wait: 5 });
  if (isAccepted(answer)) return answer.links.self;
  const done: SinglePrediction = answer;
  return 'label' in done ? done.label : undefined;
}
export const progress = (b: BatchView): number => b.completed / b.total;
export const codeOf = (e: unknown): string | undefined => (e instanceof InferqError ? e.code : undefined);
// @ts-expect-error: a model name is a string
void client.predict(42, [1]);
`;

const ESM_USE = `
import { InferqClient, InferqError, isAccepted } from 'inferq-client';

const [url, features] = [process.argv[2], JSON.parse(process.argv[3])];
const client = new InferqClient({ url });
const models = await client.listModels();
const answer = await client.predict('breast-cancer', features, { wait: 20 });
const result = isAccepted(answer) ? (await client.waitForJob(answer.id)).result : answer;
const error = await client.predict('breast-cancer', features.slice(1)).catch((e) => e);
console.log(JSON.stringify({
  models: models.models.map((m) => m.name),
  label: result.label,
  probabilities: result.probabilities,
  error: { isInferqError: error instanceof InferqError, status: error.status, code: error.code },
}));
`;

describe('the client package installed from its tarball into an empty folder', () => {
  it('holds no server dependency and is small', () => {
    const { bytes, packages } = installed(join(app, 'node_modules'));
    // The numbers a user pays, printed for the record.
    console.info(
      `inferq-client installed: ${packages.length} packages, ${bytes} bytes: ${packages.join(', ')}`,
    );
    expect(packages).toContain('inferq-client');
    expect(packages).toEqual(expect.arrayContaining(['commander', 'cli-progress']));
    for (const name of SERVER_PACKAGES) expect(packages).not.toContain(name);
    expect(packages.some((p) => p.startsWith('@hono/') || p.startsWith('@bull-board/'))).toBe(
      false,
    );
    expect(packages.length).toBeLessThanOrEqual(12);
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
    // No tests, benches or TypeScript sources in the package itself.
    const own = readdirSync(join(app, 'node_modules/inferq-client'), {
      recursive: true,
    }) as string[];
    expect(own.filter((f) => /(^|\/)(test|bench|src)\/|\.ts$(?<!\.d\.ts)/.test(f))).toEqual([]);
  });

  it('is imported from a plain .mjs file and calls the running service', async () => {
    writeFileSync(join(app, 'use.mjs'), ESM_USE);
    const out = await inApp(process.execPath, ['use.mjs', url, JSON.stringify(BREAST_CANCER_ROW)]);
    const seen = JSON.parse(out.stdout) as {
      models: string[];
      label: string;
      probabilities: number[];
      error: { isInferqError: boolean; status: number; code: string };
    };
    const direct = (await (
      await stack.post('/v1/models/breast-cancer/predict', { features: BREAST_CANCER_ROW })
    ).json()) as { label: string; probabilities: number[] };
    expect(seen.models).toContain('breast-cancer');
    expect(seen.label).toBe(direct.label);
    expect(seen.probabilities).toEqual(direct.probabilities);
    expect(seen.error).toEqual({ isInferqError: true, status: 422, code: 'validation_error' });
  });

  it('is loaded by require() from CommonJS too', async () => {
    writeFileSync(
      join(app, 'use.cjs'),
      "const { InferqClient } = require('inferq-client');\nconsole.log(typeof new InferqClient({ url: 'http://127.0.0.1:1' }).predict);\n",
    );
    const out = await inApp(process.execPath, ['use.cjs']);
    expect(out.stdout.trim()).toBe('function');
  });

  it('gives TypeScript its types (strict, skipLibCheck off)', async () => {
    const result = await typecheck.catch((e: { stdout?: string; message: string }) => {
      throw new Error(`tsc failed: ${e.stdout ?? ''}${e.message}`);
    });
    expect(result.stdout).toBe('');
  });

  it('runs inferq-client predict and batch against the service', async () => {
    const bin = join(app, 'node_modules/.bin/inferq-client');
    const predicted = await inApp(bin, [
      'predict',
      'breast-cancer',
      '--features',
      BREAST_CANCER_ROW.join(','),
      '--url',
      url,
    ]);
    expect(JSON.parse(predicted.stdout)).toMatchObject({
      model: 'breast-cancer',
      label: 'malignant',
    });

    const rows = [0, 1, 2].map((i) => uniqueRow(97_000 + i));
    const header = ['id', ...rows[0]!.map((_, i) => `f${i + 1}`)].join(',');
    const csv = [header, ...rows.map((r, i) => [`r${i}`, ...r].join(','))].join('\n');
    writeFileSync(join(app, 'rows.csv'), `${csv}\n`);
    const batch = await inApp(bin, [
      'batch',
      'rows.csv',
      '-m',
      'breast-cancer',
      '-o',
      'out.jsonl',
      '--url',
      url,
    ]);
    expect(batch.stdout).toMatch(/batch \S+ queued: 3 rows/);
    const lines = readFileSync(join(app, 'out.jsonl'), 'utf8').trim().split('\n');
    expect(
      lines.map((l) => JSON.parse(l) as { index: number; id: string; status: string }),
    ).toEqual(
      [0, 1, 2].map((i) => expect.objectContaining({ index: i, id: `r${i}`, status: 'completed' })),
    );
  });
});
