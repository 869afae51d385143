/**
 * `inferq batch` keeps its memory flat: the compiled producer CLI (as the client package ships
 * it) runs a 300,000-row JSON Lines file (~75 MB), then the same rows as a Parquet table (one
 * row group of nullable double columns, as pyarrow writes them by default), against a real API
 * and worker, and reports its own peak RSS (getrusage's maxRSS, read as it exits).
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { parquetWriteFile } from 'hyparquet-writer';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';
import { runCli, stopRunningClis } from './run-cli.js';

const ROWS = 300_000;
const PEAK_RSS_LIMIT_MB = 150;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Inside the repository, so that the compiled files find node_modules.
const build = join(root, 'node_modules/.cache', `inferq-memory-test-${process.pid}`);
const dir = join(tmpdir(), `inferq-memory-${process.pid}`);
let stack: TestStack;
let url: string;

/** Compiles the client package's CLI (src/client + src/cli producer commands) into `build`. */
async function compileCli(): Promise<void> {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const config = join(root, 'packages/client/tsconfig.json');
  await promisify(execFile)(
    process.execPath,
    [tsc, '-p', config, '--outDir', build, '--declaration', 'false'],
    { cwd: root, timeout: 60_000 },
  ).catch((err: unknown) => {
    // tsc emits despite type errors (the typecheck reports those); only a missing entry counts.
    if (!existsSync(join(build, 'cli/client-main.js'))) throw err;
  });
}

async function writeRows(path: string): Promise<void> {
  const out = createWriteStream(path);
  let text = '';
  for (let i = 0; i < ROWS; i++) {
    text += `${JSON.stringify({ id: `m${i}`, features: uniqueRow(i) })}\n`;
    if (text.length > 1 << 20) {
      if (!out.write(text)) await once(out, 'drain');
      text = '';
    }
  }
  out.end(text);
  await once(out, 'finish');
}

/** The same rows as a Parquet table: an `id` column and 30 feature columns, one row group. */
function writeParquet(path: string): void {
  const features = Array.from({ length: 30 }, () => new Float64Array(ROWS));
  const ids = new Array<string>(ROWS);
  for (let i = 0; i < ROWS; i++) {
    ids[i] = `m${i}`;
    uniqueRow(i).forEach((value, c) => (features[c]![i] = value));
  }
  parquetWriteFile({
    filename: path,
    rowGroupSize: ROWS,
    columnData: [
      { name: 'id', data: ids, type: 'STRING' },
      ...features.map((data, c) => ({ name: `f${c}`, data, type: 'DOUBLE' as const })),
    ],
  });
}

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  // Prints the process's peak RSS (KiB) as it exits: VmHWM of its own memory, not getrusage's
  // maxRSS, which on Linux also counts the image it was forked from (this test's process, the
  // size of a Parquet table of these rows and of the API and worker besides).
  writeFileSync(
    join(dir, 'peak.mjs'),
    [
      "import { readFileSync } from 'node:fs';",
      'const hwm = () => /VmHWM:\\s*(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1];',
      "process.on('exit', () => process.stderr.write(`\\npeak-rss-kb ${hwm() ?? process.resourceUsage().maxRSS}\\n`));",
      '',
    ].join('\n'),
  );
  const [started] = await Promise.all([
    createStack(),
    compileCli(),
    writeRows(join(dir, 'rows.jsonl')),
  ]);
  writeParquet(join(dir, 'rows.parquet'));
  stack = started;
  url = `http://127.0.0.1:${await stack.api.listen(0, '127.0.0.1')}`;
}, 90_000);

afterAll(async () => {
  await stopRunningClis();
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(build, { recursive: true, force: true });
});

/** Checks the results file line by line (never whole in memory either). */
async function checkResults(path: string): Promise<number> {
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(path) })) {
    const result = JSON.parse(line) as { index: number; id: string; status: string };
    if (result.index !== n || result.id !== `m${n}` || result.status !== 'completed')
      throw new Error(`line ${n + 1} of ${path} is ${line}`);
    n++;
  }
  return n;
}

/** Runs `inferq batch <input>` and checks its results; resolves with its peak RSS, MB. */
async function batchPeakMb(input: string, output = 'out.jsonl'): Promise<number> {
  const run = await runCli(
    dir,
    ['batch', input, '-m', 'breast-cancer', '-o', output, '--url', url],
    {
      entry: join(build, 'cli/client-main.js'),
      nodeArgs: ['--import', join(dir, 'peak.mjs')],
      timeoutMs: 100_000,
    },
  );
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toContain(`queued: ${ROWS} rows`);
  if (output.endsWith('.parquet')) {
    const file = await asyncBufferFromFile(join(dir, output));
    expect(Number((await parquetMetadataAsync(file)).num_rows)).toBe(ROWS);
  } else {
    expect(await checkResults(join(dir, output))).toBe(ROWS);
  }
  const peakKb = Number(/peak-rss-kb (\d+)/.exec(run.stderr)?.[1]);
  const what = `inferq batch ${input} -o ${output}, ${ROWS} rows`;
  console.info(`${what}: peak RSS ${(peakKb / 1024).toFixed(1)} MB`);
  expect(peakKb).toBeGreaterThan(0);
  return peakKb / 1024;
}

it(`runs ${ROWS} rows with a peak RSS under ${PEAK_RSS_LIMIT_MB} MB`, async () => {
  expect(await batchPeakMb('rows.jsonl')).toBeLessThan(PEAK_RSS_LIMIT_MB);
}, 120_000);

it(`runs them from Parquet with a peak RSS under ${PEAK_RSS_LIMIT_MB} MB`, async () => {
  expect(await batchPeakMb('rows.parquet')).toBeLessThan(PEAK_RSS_LIMIT_MB);
}, 120_000);

it(`writes their results as Parquet with a peak RSS under ${PEAK_RSS_LIMIT_MB} MB`, async () => {
  expect(await batchPeakMb('rows.jsonl', 'out.parquet')).toBeLessThan(PEAK_RSS_LIMIT_MB);
}, 120_000);
