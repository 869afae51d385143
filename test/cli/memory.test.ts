/**
 * `inferq batch` keeps its memory flat: the compiled producer CLI (as the client package ships
 * it) runs a 300,000-row JSON Lines file (~75 MB) against a real API and worker, and reports its
 * own peak RSS (getrusage's maxRSS, read as it exits).
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

beforeAll(async () => {
  mkdirSync(dir, { recursive: true });
  // Prints the process's peak RSS (KiB on Linux) as it exits.
  writeFileSync(
    join(dir, 'peak.mjs'),
    "process.on('exit', () => process.stderr.write(`\\npeak-rss-kb ${process.resourceUsage().maxRSS}\\n`));\n",
  );
  const [started] = await Promise.all([
    createStack(),
    compileCli(),
    writeRows(join(dir, 'rows.jsonl')),
  ]);
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

it(`runs ${ROWS} rows with a peak RSS under ${PEAK_RSS_LIMIT_MB} MB`, async () => {
  const run = await runCli(
    dir,
    ['batch', 'rows.jsonl', '-m', 'breast-cancer', '-o', 'out.jsonl', '--url', url],
    {
      entry: join(build, 'cli/client-main.js'),
      nodeArgs: ['--import', join(dir, 'peak.mjs')],
      timeoutMs: 100_000,
    },
  );
  expect(run.code, run.stderr).toBe(0);
  expect(run.stdout).toContain(`queued: ${ROWS} rows`);
  expect(await checkResults(join(dir, 'out.jsonl'))).toBe(ROWS);
  const peakKb = Number(/peak-rss-kb (\d+)/.exec(run.stderr)?.[1]);
  console.info(`inferq batch, ${ROWS} rows: peak RSS ${(peakKb / 1024).toFixed(1)} MB`);
  expect(peakKb).toBeGreaterThan(0);
  expect(peakKb / 1024).toBeLessThan(PEAK_RSS_LIMIT_MB);
}, 120_000);
