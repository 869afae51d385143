import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lineOfItem, readRows, splitCsv } from '../../src/cli/rows.js';

const dir = mkdtempSync(join(tmpdir(), 'inferq-rows-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function rows(path: string, width?: number) {
  const out = [];
  for await (const row of readRows(path, { width })) out.push(row);
  return out;
}

describe('splitCsv', () => {
  it('splits plain and quoted fields, with commas and "" escapes inside quotes', () => {
    expect(splitCsv(' 1, 2.5 ,"a,b","say ""hi""",')).toEqual(['1', '2.5', 'a,b', 'say "hi"', '']);
  });
});

describe('readRows', () => {
  it('reads a headerless CSV as features, with file line numbers past blank lines', async () => {
    const path = file('plain.csv', '1,2,3\n\n4,5e-1,-6\r\n');
    expect(await rows(path, 3)).toEqual([
      { line: 1, item: { features: [1, 2, 3] } },
      { line: 3, item: { features: [4, 0.5, -6] } },
    ]);
  });

  it('takes a first row that is not all numbers as a header and its id column as the item id', async () => {
    const path = file('header.csv', '\uFEFFa,ID,b\n1,"x,1",2\n3,y,4\n');
    expect(await rows(path, 2)).toEqual([
      { line: 2, item: { id: 'x,1', features: [1, 2] } },
      { line: 3, item: { id: 'y', features: [3, 4] } },
    ]);
  });

  it('names the line and the value of a word among the numbers', async () => {
    const path = file('word.csv', 'a,b\n1,2\n3,abc\n');
    await expect(rows(path)).rejects.toThrow(`${path} line 3: expected numbers, got 'abc'`);
  });

  it('names the line of an empty value, a short row and a value beyond float32', async () => {
    await expect(rows(file('empty.csv', '1,2\n3,\n'))).rejects.toThrow(
      'line 2: expected numbers, got an empty value in column 2',
    );
    await expect(rows(file('short.csv', '1,2\n3\n'))).rejects.toThrow(
      'line 2: expected 2 columns, got 1',
    );
    await expect(rows(file('big.csv', '1,2\n3,1e39\n'))).rejects.toThrow(
      'line 2: 1e39 is outside the float32 range',
    );
  });

  it("checks each row's width against the model", async () => {
    await expect(rows(file('width.csv', '1,2,3\n'), 30)).rejects.toThrow(
      'line 1: expected 30 features, got 3',
    );
  });

  it('reads JSON Lines objects and bare arrays, ids as strings', async () => {
    const path = file(
      'rows.jsonl',
      '{"id":"a","features":[1,2]}\n\n[3,4]\n{"id":7,"features":[5,6]}\n',
    );
    expect(await rows(path, 2)).toEqual([
      { line: 1, item: { id: 'a', features: [1, 2] } },
      { line: 3, item: { features: [3, 4] } },
      { line: 4, item: { id: '7', features: [5, 6] } },
    ]);
  });

  it('names the line of JSON Lines that are not JSON or hold no features', async () => {
    await expect(rows(file('bad.jsonl', '[1]\n{oops\n'))).rejects.toThrow('line 2: not valid JSON');
    await expect(rows(file('nofeat.jsonl', '{"x":1}\n'))).rejects.toThrow(
      'line 1: expected {"features": [numbers, ...]}',
    );
    await expect(rows(file('str.jsonl', '{"features":[1,"2"]}\n'))).rejects.toThrow(
      `line 1: expected numbers, got '"2"'`,
    );
  });

  it('finds the file line of the n-th item', async () => {
    const path = file('lines.csv', 'id,a\n\nr1,1\nr2,2\n\nr3,3\n');
    expect(await lineOfItem(path, 3)).toBe(6);
    expect(await lineOfItem(path, 9)).toBeUndefined();
  });
});
