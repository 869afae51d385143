/**
 * Parquet in and out: files written here with hyparquet-writer, read by the CLI's reader, and
 * the real CLI run against an in-process service (`inferq batch x.parquet -o y.parquet`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { parquetWriteFile, type ColumnSource } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resultText } from '../../src/cli/output.js';
import { parquetNdjson } from '../../src/cli/parquet-input.js';
import { openParquetSink } from '../../src/cli/parquet-output.js';
import { countRows, readRows, type ReadRowsOptions } from '../../src/cli/rows.js';
import { InferqClient } from '../../src/client/index.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { writeV1Parquet } from '../helpers/parquet-v1.js';
import { createStack, type TestStack } from '../helpers/stack.js';
import { runCli, stopRunningClis } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'inferq-parquet-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function table(name: string, columnData: ColumnSource[], rowGroupSize = 1000): string {
  const path = join(dir, name);
  parquetWriteFile({ filename: path, columnData, rowGroupSize });
  return path;
}

async function rows(path: string, options: ReadRowsOptions = {}) {
  const out = [];
  for await (const row of readRows(path, options)) out.push(row);
  return out;
}

async function readBack(path: string): Promise<Record<string, unknown>[]> {
  return parquetReadObjects({ file: await asyncBufferFromFile(path) });
}

const doubles = (name: string, data: number[]): ColumnSource => ({ name, type: 'DOUBLE', data });

describe('reading Parquet', () => {
  it("takes the model's feature names in model order and the id column, over several row groups", async () => {
    const path = table(
      'named.parquet',
      [
        doubles('b', [2, 20, 200, 2000, 20000]),
        { name: 'id', type: 'STRING', data: ['r0', 'r1', null, 'r3', 'r4'] },
        doubles('a', [1, 10, 100, 1000, 10000]),
        doubles('unused', [9, 9, 9, 9, 9]),
      ],
      2,
    );
    const read = await rows(path, { width: 2, featureNames: ['a', 'b'] });
    expect(read).toEqual([
      { line: 1, item: { id: 'r0', features: [1, 2] } },
      { line: 2, item: { id: 'r1', features: [10, 20] } },
      { line: 3, item: { features: [100, 200] } },
      { line: 4, item: { id: 'r3', features: [1000, 2000] } },
      { line: 5, item: { id: 'r4', features: [10000, 20000] } },
    ]);
    expect(await countRows(path, { width: 2, featureNames: ['a', 'b'] })).toBe(5);
  });

  it('takes --columns in the order given, and names a column the file lacks', async () => {
    const path = table('chosen.parquet', [
      doubles('x', [1, 2]),
      doubles('y', [3, 4]),
      doubles('z', [5, 6]),
    ]);
    expect((await rows(path, { width: 2, columns: ['z', 'x'] })).map((r) => r.item)).toEqual([
      { features: [5, 1] },
      { features: [6, 2] },
    ]);
    await expect(rows(path, { columns: ['x', 'nope'] })).rejects.toThrow(
      `${path} has no column 'nope' (it has 'x', 'y', 'z')`,
    );
  });

  it('otherwise takes every number column but id in file order, integers and floats alike', async () => {
    const path = table('auto.parquet', [
      { name: 'ID', type: 'INT64', data: [7n, 8n] },
      { name: 'n32', type: 'INT32', data: [1, 2] },
      { name: 'note', type: 'STRING', data: ['a', 'b'] },
      { name: 'f32', type: 'FLOAT', data: new Float32Array([0.5, 1.5]) },
      { name: 'n64', type: 'INT64', data: [3n, 4n] },
    ]);
    expect((await rows(path, { width: 3 })).map((r) => r.item)).toEqual([
      { id: '7', features: [1, 0.5, 3] },
      { id: '8', features: [2, 1.5, 4] },
    ]);
  });

  it('says how many number columns it found when the model takes another count', async () => {
    const path = table('narrow.parquet', [doubles('a', [1]), doubles('b', [2])]);
    await expect(countRows(path, { width: 30 })).rejects.toThrow(
      'the model takes 30 features; ' +
        `${path} has 2 number columns ('a', 'b'): choose 30 with --columns a,b,c in the model's order`,
    );
  });

  it('names the row and column of an empty value', async () => {
    const path = table('holes.parquet', [
      doubles('a', [1, 2, 3]),
      { name: 'b', type: 'DOUBLE', data: [1, null, 3] },
    ]);
    await expect(rows(path, { width: 2 })).rejects.toThrow(`${path} row 2: column 'b' is empty`);
  });

  it('writes the upload NDJSON of the rows it reads, line for line, up to the first bad row', async () => {
    const n = 2_500;
    const path = table(
      'upload.parquet',
      [
        {
          name: 'id',
          type: 'STRING',
          data: Array.from({ length: n }, (_, i) => (i % 3 ? `r"${i}` : null)),
        },
        doubles(
          'a',
          Array.from({ length: n }, (_, i) => i / 7),
        ),
        { name: 'b', type: 'INT64', data: Array.from({ length: n }, (_, i) => BigInt(i)) },
        doubles(
          'c',
          Array.from({ length: n }, (_, i) => -i * 1e-9),
        ),
      ],
      700,
    );
    const items = (await rows(path, { width: 3 })).map((r) => JSON.stringify(r.item));
    const text = async (file: string) => {
      let out = '';
      for await (const block of parquetNdjson(file, { width: 3 }))
        out += Buffer.from(block).toString();
      return out;
    };
    expect(await text(path)).toBe(items.map((l) => `${l}\n`).join(''));
    // Row groups larger than a read (700 rows in reads of 300, a group's end inside a read's
    // span): the same rows, ids and values in the same order.
    const ranged = await rows(path, { width: 3, rangeRows: 300 });
    expect(ranged.map((r) => JSON.stringify(r.item))).toEqual(items);
    expect(ranged.map((r) => r.line)).toEqual(Array.from({ length: n }, (_, i) => i + 1));

    // A bad value stops the reading at the block holding it, naming its row and column.
    const holes = table('upload-holes.parquet', [
      doubles('a', [1, 2, 3, 4]),
      doubles('b', [1, 2, 3, 4]),
      { name: 'c', type: 'DOUBLE', data: [1, 2, Infinity, null] },
    ]);
    const seen: string[] = [];
    const reading = (async () => {
      for await (const block of parquetNdjson(holes, { width: 3 }))
        seen.push(Buffer.from(block).toString());
    })();
    await expect(reading).rejects.toThrow(
      `${holes} row 3: column 'c' holds Infinity, outside the float32 range`,
    );
    expect(seen.join('')).toBe('');
    // Read two rows at a time, the bad row is named by its row in the file all the same.
    await expect(rows(holes, { width: 3, rangeRows: 2 })).rejects.toThrow(
      `${holes} row 3: column 'c' holds Infinity, outside the float32 range`,
    );
  });

  it('reads every kind of page as hyparquet does: dictionaries, integers, nulls, many pages, with or without an offset index', async () => {
    const n = 20_000;
    const columnData: ColumnSource[] = [
      // Low cardinality: dictionary-encoded.
      {
        name: 'dict',
        type: 'DOUBLE',
        data: Array.from({ length: n }, (_, i) => (i % 5) / 4),
        encoding: 'RLE_DICTIONARY',
      },
      { name: 'int', type: 'INT64', data: Array.from({ length: n }, (_, i) => BigInt(i * 3 - 7)) },
      { name: 'int32', type: 'INT32', data: Array.from({ length: n }, (_, i) => i % 1000) },
      { name: 'float', type: 'FLOAT', data: Array.from({ length: n }, (_, i) => i / 8) },
      // Written without an offset index: read whole, rows before the range skipped.
      {
        name: 'plain',
        type: 'DOUBLE',
        data: Array.from({ length: n }, (_, i) => i * 1e-3),
        offsetIndex: false,
      },
    ];
    // Ids as plain strings (with nulls, quotes and non-ASCII text), then dictionary-encoded.
    const ids = Array.from({ length: n }, (_, i) => (i % 7 === 3 ? null : `r"${i}-é漢`));
    for (const idColumn of [
      { name: 'id', type: 'STRING', data: ids },
      {
        name: 'id',
        type: 'STRING',
        data: ids.map((id) => id && id.slice(0, 3)),
        encoding: 'RLE_DICTIONARY',
      },
    ] as ColumnSource[]) {
      const path = join(dir, 'pages.parquet');
      // Small pages (many per chunk) in two row groups.
      parquetWriteFile({
        filename: path,
        columnData: [idColumn, ...columnData],
        rowGroupSize: 12_000,
        pageSize: 16_384,
      });
      const back = await readBack(path);
      const expected = back.map((row) => ({
        ...(row.id === null ? {} : { id: row.id }),
        features: ['dict', 'int', 'int32', 'float', 'plain'].map((c) => Number(row[c])),
      }));
      for (const rangeRows of [undefined, 999, 5_000]) {
        const read = await rows(path, { width: 5, ...(rangeRows ? { rangeRows } : {}) });
        expect(read.map((r) => r.item)).toEqual(expected);
        expect(read.map((r) => r.line)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      }
    }
    // A null deep in a paged column stops the reading at its row.
    const gaps = join(dir, 'pages-gap.parquet');
    parquetWriteFile({
      filename: gaps,
      rowGroupSize: n,
      pageSize: 16_384,
      columnData: [
        doubles(
          'a',
          Array.from({ length: n }, (_, i) => i),
        ),
        {
          name: 'b',
          type: 'DOUBLE',
          data: Array.from({ length: n }, (_, i) => (i === 15_321 ? null : i)),
        },
      ],
    });
    await expect(rows(gaps, { width: 2 })).rejects.toThrow(
      `${gaps} row 15322: column 'b' is empty`,
    );
  });

  it("reads version-1 data pages (pyarrow's default) as hyparquet does, and names a null's row", async () => {
    const n = 2_500;
    const path = join(dir, 'v1.parquet');
    writeV1Parquet(
      path,
      [
        {
          name: 'id',
          type: 'BYTE_ARRAY',
          utf8: true,
          values: Array.from({ length: n }, (_, i) => (i % 5 === 2 ? null : `v1"${i}-é`)),
        },
        { name: 'a', type: 'DOUBLE', values: Array.from({ length: n }, (_, i) => i / 3) },
        { name: 'b', type: 'INT64', values: Array.from({ length: n }, (_, i) => BigInt(i - 9)) },
      ],
      700,
    );
    const expected = (await readBack(path)).map((row) => ({
      ...(row.id === null ? {} : { id: row.id }),
      features: [Number(row.a), Number(row.b)],
    }));
    expect(expected[3]).toEqual({ id: 'v1"3-é', features: [1, -6] });
    for (const rangeRows of [undefined, 333]) {
      const read = await rows(path, { width: 2, ...(rangeRows ? { rangeRows } : {}) });
      expect(read.map((r) => r.item)).toEqual(expected);
    }
    const gap = join(dir, 'v1-gap.parquet');
    writeV1Parquet(
      gap,
      [
        { name: 'a', type: 'DOUBLE', values: Array.from({ length: n }, (_, i) => i) },
        {
          name: 'b',
          type: 'DOUBLE',
          values: Array.from({ length: n }, (_, i) => (i === 1_801 ? null : i)),
        },
      ],
      700,
    );
    await expect(rows(gap, { width: 2 })).rejects.toThrow(`${gap} row 1802: column 'b' is empty`);
  });

  it('refuses a file that is not Parquet, naming it', async () => {
    const path = join(dir, 'fake.parquet');
    (await import('node:fs')).writeFileSync(path, 'not parquet at all, just text\n');
    await expect(countRows(path)).rejects.toThrow(`${path} is not a Parquet file`);
  });
});

describe('writing Parquet results', () => {
  it('writes one row per result line with label probabilities and error columns', async () => {
    const path = join(dir, 'out.parquet');
    const sink = await openParquetSink(path, {
      task: 'classification',
      labels: ['malignant', 'benign'],
    });
    await sink.write(
      resultText(
        JSON.stringify({
          index: 0,
          id: 'a',
          status: 'completed',
          prediction: 1,
          label: 'benign',
          confidence: 0.75,
          probabilities: [0.25, 0.75],
        }),
      ),
    );
    await sink.write(
      resultText(
        JSON.stringify({
          index: 1,
          status: 'failed',
          error: { code: 'inference_failed', message: 'boom' },
        }),
      ),
    );
    await sink.close();
    expect(await readBack(path)).toEqual([
      {
        index: 0,
        id: 'a',
        status: 'completed',
        prediction: 1,
        label: 'benign',
        confidence: 0.75,
        probability_malignant: 0.25,
        probability_benign: 0.75,
        error_code: null,
        error_message: null,
      },
      {
        index: 1,
        id: null,
        status: 'failed',
        prediction: null,
        label: null,
        confidence: null,
        probability_malignant: null,
        probability_benign: null,
        error_code: 'inference_failed',
        error_message: 'boom',
      },
    ]);
  });

  it('writes regression predictions as numbers', async () => {
    const path = join(dir, 'reg.parquet');
    const sink = await openParquetSink(path, { task: 'regression' });
    await sink.write(
      resultText(JSON.stringify({ index: 0, status: 'completed', prediction: 151.5 })),
    );
    await sink.close();
    expect(await readBack(path)).toEqual([
      {
        index: 0,
        id: null,
        status: 'completed',
        prediction: 151.5,
        error_code: null,
        error_message: null,
      },
    ]);
  });
});

describe('inferq batch with Parquet files', () => {
  let stack: TestStack;
  let url: string;
  let batchId = '';
  const ROWS = 300;
  const FEATURES = Array.from({ length: 30 }, (_, j) => `f${j}`);
  const source = Array.from({ length: ROWS }, (_, i) => uniqueRow(60_000 + i));

  beforeAll(async () => {
    stack = await createStack({ env: { BATCH_CHUNK_ROWS: '64' } });
    url = `http://127.0.0.1:${await stack.api.listen(0, '127.0.0.1')}`;
    // Columns in reverse: read by --columns in the model's order.
    const columns = FEATURES.map((name, j) =>
      doubles(
        name,
        source.map((r) => r[j] ?? 0),
      ),
    );
    table(
      'table.parquet',
      [{ name: 'id', type: 'STRING', data: source.map((_, i) => `p${i}`) }, ...columns.reverse()],
      128,
    );
  });

  afterAll(async () => {
    await stopRunningClis();
    await stack?.close();
  });

  it('reads table.parquet by --columns and writes results.parquet in input order', async () => {
    const run = await runCli(dir, [
      'batch',
      'table.parquet',
      '-m',
      'breast-cancer',
      '--columns',
      FEATURES.join(','),
      '-o',
      'results.parquet',
      '--url',
      url,
    ]);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(run.code, run.stderr).toBe(0);
    batchId = /batch (\S+) queued: 300 rows/.exec(run.stdout)?.[1] ?? '';
    expect(batchId).not.toBe('');
    const out = await readBack(join(dir, 'results.parquet'));
    expect(out.map((r) => r.index)).toEqual(source.map((_, i) => i));
    expect(out.map((r) => r.id)).toEqual(source.map((_, i) => `p${i}`));
    expect(out.every((r) => r.status === 'completed' && typeof r.label === 'string')).toBe(true);
    const client = new InferqClient({ url });
    for (const i of [0, 150, 299]) {
      const online = (await client.predict('breast-cancer', source[i] ?? [])) as {
        prediction: number;
        probabilities: number[];
      };
      expect(out[i]?.prediction).toBe(online.prediction);
      expect(out[i]?.probability_benign).toBeCloseTo(online.probabilities[1] ?? NaN, 5);
    }
  });

  it('writes the same rows again with inferq results <id> -o again.parquet', async () => {
    expect(batchId).not.toBe('');
    const run = await runCli(dir, ['results', batchId, '-o', 'again.parquet', '--url', url]);
    expect(run.code, run.stderr).toBe(0);
    expect(await readBack(join(dir, 'again.parquet'))).toEqual(
      await readBack(join(dir, 'results.parquet')),
    );
  });

  it('stops the upload at an empty value deep in the file, naming its row; no batch is queued', async () => {
    const columns = FEATURES.map((name, j) =>
      j === 3
        ? {
            name,
            type: 'DOUBLE' as const,
            data: source.map((r, i) => (i === 249 ? null : (r[j] ?? 0))),
          }
        : doubles(
            name,
            source.map((r) => r[j] ?? 0),
          ),
    );
    table('hole.parquet', columns, 64);
    const run = await runCli(dir, ['batch', 'hole.parquet', '-m', 'breast-cancer', '--url', url]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe("inferq: hole.parquet row 250: column 'f3' is empty");
    expect(run.stderr).not.toContain('queued');
  });

  it('exits 1 naming the column count when no --columns fit the model', async () => {
    table('three.parquet', [doubles('a', [1]), doubles('b', [2]), doubles('c', [3])]);
    const run = await runCli(dir, ['batch', 'three.parquet', '-m', 'breast-cancer', '--url', url]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(
      "inferq: the model takes 30 features; three.parquet has 3 number columns ('a', 'b', 'c'): " +
        "choose 30 with --columns a,b,c in the model's order",
    );
  });
});
