import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INFERQ_BIN, stopChild } from '../../src/cli/children.js';
import { InferqClient } from '../../src/client/index.js';
import { parityFixture, uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

let stack: TestStack;
let url: string;
let dir: string;
const children = new Set<ChildProcess>();

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (`node bin/inferq.js ...`) to its end; stopped by pid if it outlives 45 s. */
async function inferq(...args: string[]): Promise<Run> {
  const env = { ...process.env };
  delete env.INFERQ_URL;
  delete env.INFERQ_API_KEY;
  const child = spawn(process.execPath, [INFERQ_BIN, ...args], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const timer = setTimeout(() => void stopChild(child, 1000), 45_000);
  try {
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
    children.delete(child);
  }
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

/** 500 breast-cancer rows: the parity fixture's rows, then unique ones. */
function rows500(): number[][] {
  const fixture = parityFixture('breast-cancer', '1.1.0').rows as number[][];
  return Array.from({ length: 500 }, (_, i) => fixture[i] ?? uniqueRow(90_000 + i));
}

function writeCsv(name: string, rows: (string | number)[][], header = true): string {
  const head = header ? `id,${Array.from({ length: 30 }, (_, i) => `f${i + 1}`).join(',')}\n` : '';
  writeFileSync(join(dir, name), head + rows.map((r) => r.join(',')).join('\n') + '\n');
  return name;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inferq-cli-'));
  stack = await createStack({ env: { BATCH_CHUNK_ROWS: '64' } });
  url = `http://127.0.0.1:${await stack.api.listen(0, '127.0.0.1')}`;
});

afterAll(async () => {
  await Promise.all([...children].map((c) => stopChild(c, 1000)));
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('inferq batch and inferq results', () => {
  let batchId = '';

  it('runs a 500-row CSV and writes 500 results in input order to -o', async () => {
    const rows = rows500();
    writeCsv(
      'rows.csv',
      rows.map((r, i) => [`r${i}`, ...r]),
    );
    const run = await inferq(
      'batch',
      'rows.csv',
      '--model',
      'breast-cancer',
      '-o',
      'out.jsonl',
      '--url',
      url,
    );
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.code).toBe(0);
    const queued = /batch (\S+) queued: 500 rows.*inferq results \1/.exec(run.stdout);
    expect(queued, run.stdout).not.toBeNull();
    batchId = queued?.[1] ?? '';
    const out = lines(readFileSync(join(dir, 'out.jsonl'), 'utf8')).map((l) => JSON.parse(l));
    expect(out).toHaveLength(500);
    expect(out.map((l) => l.index)).toEqual(rows.map((_, i) => i));
    expect(out.map((l) => l.id)).toEqual(rows.map((_, i) => `r${i}`));
    expect(out.every((l) => l.status === 'completed' && l.label)).toBe(true);
    const client = new InferqClient({ url });
    for (const i of [0, 24, 321]) {
      const online = (await client.predict('breast-cancer', rows[i] ?? [])) as any;
      expect(out[i].prediction).toBe(online.prediction);
      expect(out[i].probabilities[1]).toBeCloseTo(online.probabilities[1], 5);
    }
  });

  it('fetches the same result lines again with inferq results <id>', async () => {
    expect(batchId).not.toBe('');
    const run = await inferq('results', batchId, '--url', url);
    expect(run.code).toBe(0);
    expect(lines(run.stdout)).toEqual(lines(readFileSync(join(dir, 'out.jsonl'), 'utf8')));
    expect(run.stderr).toContain(`batch ${batchId}: 500 results (0 failed)`);
  });

  it('runs a JSON Lines file to stdout with a pinned version and priority', async () => {
    const body = [1, 2, 3].map((i) => JSON.stringify({ features: uniqueRow(95_000 + i) }));
    writeFileSync(join(dir, 'rows.jsonl'), `${body.join('\n')}\n`);
    const run = await inferq(
      'batch',
      'rows.jsonl',
      '-m',
      'breast-cancer',
      '--version',
      '1.0.0',
      '--priority',
      '2',
      '--url',
      url,
    );
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/batch \S+ queued: 3 rows for breast-cancer 1\.0\.0/);
    const out = lines(run.stdout).map((l) => JSON.parse(l));
    expect(out.map((l) => [l.index, l.status])).toEqual([
      [0, 'completed'],
      [1, 'completed'],
      [2, 'completed'],
    ]);
  });
});

describe('inferq batch: clear errors', () => {
  it('exits 1 with "file not found" for a missing file', async () => {
    const run = await inferq('batch', 'missing.csv', '--model', 'breast-cancer', '--url', url);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe('inferq: file not found: missing.csv');
  });

  it('exits 1 naming line 7 of a CSV whose row holds a word, before uploading', async () => {
    const rows: (string | number)[][] = Array.from({ length: 10 }, (_, i) => [
      `r${i}`,
      ...uniqueRow(i),
    ]);
    rows[5]?.splice(4, 1, 'abc'); // header is line 1, so the 6th row is line 7
    writeCsv('bad.csv', rows);
    const run = await inferq('batch', 'bad.csv', '--model', 'breast-cancer', '--url', url);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe("inferq: bad.csv line 7: expected numbers, got 'abc'");
    expect(run.stdout).not.toContain('queued');
  });

  it('exits 1 naming the line of a row with the wrong feature count', async () => {
    writeCsv('short.csv', [uniqueRow(1), uniqueRow(2).slice(1), uniqueRow(3)], false);
    const run = await inferq('batch', 'short.csv', '--model', 'breast-cancer', '--url', url);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('short.csv line 2: expected 30 columns, got 29');
  });

  it('sends JSON Lines as they are and names the line the server refuses (blank lines counted)', async () => {
    const body = [1, 2, 3, 4].map((i) =>
      JSON.stringify({ id: `r${i}`, features: uniqueRow(96_000 + i) }),
    );
    body[2] = JSON.stringify({ id: 'r3', features: uniqueRow(96_003).slice(1) });
    writeFileSync(join(dir, 'as-is.jsonl'), `${body[0]}\n\n${body.slice(1).join('\n')}\n`);
    const run = await inferq('batch', 'as-is.jsonl', '--model', 'breast-cancer', '--url', url);
    expect(run.code).toBe(1);
    // Line 4 of the file (a blank line 2 before it): the server's line number is the file's.
    expect(run.stderr.trim()).toMatch(
      /^inferq: as-is\.jsonl line 4: .*expected 30 features, got 29/,
    );
  });

  it('falls back to parsed items for JSON Lines forms only the CLI reads (bare arrays)', async () => {
    const body = [
      JSON.stringify({ features: uniqueRow(97_001) }),
      JSON.stringify(uniqueRow(97_002)),
      JSON.stringify({ id: 7, features: uniqueRow(97_003) }),
    ];
    writeFileSync(join(dir, 'mixed.jsonl'), `${body.join('\n')}\n`);
    const run = await inferq('batch', 'mixed.jsonl', '-m', 'breast-cancer', '--url', url);
    expect(run.code).toBe(0);
    const out = lines(run.stdout).map((l) => JSON.parse(l));
    expect(out.map((l) => [l.index, l.status, l.id])).toEqual([
      [0, 'completed', undefined],
      [1, 'completed', undefined],
      [2, 'completed', '7'],
    ]);
  });

  it('names the file line of a row the server refuses (an id over 256 characters)', async () => {
    const rows = [0, 1, 2, 3].map((i) => [i === 2 ? 'x'.repeat(300) : `r${i}`, ...uniqueRow(i)]);
    writeCsv('ids.csv', rows);
    const run = await inferq('batch', 'ids.csv', '--model', 'breast-cancer', '--url', url);
    expect(run.code).toBe(1);
    // Item 3 of the upload is line 4 of the file, under its header.
    expect(run.stderr.trim()).toBe(
      'inferq: ids.csv line 4: id must be a string of at most 256 characters (the server refused the batch)',
    );
  });

  it('exits 1 with "cannot reach the inferq server" when nothing listens', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await new Promise((r) => server.close(r));
    writeCsv('ok.csv', [uniqueRow(5)], false);
    const down = `http://127.0.0.1:${port}`;
    const run = await inferq('batch', 'ok.csv', '--model', 'breast-cancer', '--url', down);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(
      `inferq: cannot reach the inferq server at ${down} (is it running? start it with \`npm start\`)`,
    );
  });
});

describe('inferq predict', () => {
  it('prints the prediction of --features as JSON, following the job after a 202', async () => {
    // --wait 0 makes the server answer 202 at once; the command then long-polls the job.
    const features = uniqueRow(99_999).join(',');
    const run = await inferq(
      'predict',
      'breast-cancer',
      '--features',
      features,
      '--wait',
      '0',
      '--url',
      url,
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout);
    expect(body).toMatchObject({ model: 'breast-cancer', version: '1.1.0', cached: false });
    expect(body.probabilities).toHaveLength(2);
    const again = await new InferqClient({ url }).predict('breast-cancer', uniqueRow(99_999));
    expect(again).toMatchObject({ cached: true, id: body.id });
  });

  it('reads a body from --file; a model of another width gives a one-line validation_error', async () => {
    writeFileSync(
      join(dir, 'instances.json'),
      JSON.stringify({ instances: [uniqueRow(7), uniqueRow(8)] }),
    );
    const run = await inferq('predict', 'diabetes', '--file', 'instances.json', '--url', url);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('expected 10 features, got 30 [validation_error]');
    const ok = await inferq('predict', 'breast-cancer', '--file', 'instances.json', '--url', url);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).predictions).toHaveLength(2);
  });
});
