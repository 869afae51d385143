import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import type { BatchItem } from '../client/index.js';
import { CliError } from './cli-error.js';
import type { ParquetReadOptions } from './parquet-input.js';
import { FLOAT32_MAX } from '../shared/public-types.js';

/** One item read from an input file, with the 1-based line (Parquet: row) it came from. */
export interface FileRow {
  line: number;
  item: BatchItem;
}

/** How to read an input file: `width` for every kind, the rest for Parquet's columns. */
export type ReadRowsOptions = ParquetReadOptions;

/** Whether `path` is read as Parquet (by its extension). */
export function isParquetFile(path: string): boolean {
  return extname(path).toLowerCase() === '.parquet';
}

/** What a position in the file is called in messages: a Parquet row, a text line. */
export function positionWord(path: string): 'row' | 'line' {
  return isParquetFile(path) ? 'row' : 'line';
}

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Fails with "file not found: x" (and friends) before anything else happens. */
export async function assertReadableFile(path: string): Promise<void> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new CliError(`not a file: ${path}`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new CliError(`file not found: ${path}`);
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

/** Splits one CSV record; double-quoted fields may hold commas and `""` escapes. */
export function splitCsv(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    let field = '';
    if (line[i] === '"') {
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) throw new Error('unterminated quoted field');
        field += line.slice(j, q);
        if (line[q + 1] === '"') {
          field += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      const comma = line.indexOf(',', i);
      if (line.slice(i, comma < 0 ? undefined : comma).trim() !== '')
        throw new Error('text after a quoted field');
      i = comma < 0 ? line.length : comma;
    } else {
      const comma = line.indexOf(',', i);
      field = line.slice(i, comma < 0 ? undefined : comma).trim();
      i = comma < 0 ? line.length : comma;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++;
  }
}

function quoted(text: string): string {
  return `'${text.length > 40 ? `${text.slice(0, 40)}…` : text}'`;
}

/** Parses one feature value or explains why it is not one. */
function toFeature(text: string, column: number): number {
  if (text === '') throw new Error(`expected numbers, got an empty value in column ${column}`);
  if (!NUMBER_RE.test(text)) throw new Error(`expected numbers, got ${quoted(text)}`);
  const value = Number(text);
  if (!Number.isFinite(value) || Math.abs(value) > FLOAT32_MAX)
    throw new Error(`${text} is outside the float32 range`);
  return value;
}

function checkWidth(features: unknown[], width: number | undefined): void {
  if (width !== undefined && features.length !== width)
    throw new Error(`expected ${width} features, got ${features.length}`);
}

interface CsvLayout {
  columns: number;
  idColumn: number;
}

function csvRow(fields: string[], layout: CsvLayout, width?: number): BatchItem {
  if (fields.length !== layout.columns)
    throw new Error(`expected ${layout.columns} columns, got ${fields.length}`);
  const features: number[] = [];
  let id: string | undefined;
  fields.forEach((field, c) => {
    if (c === layout.idColumn) id = field;
    else features.push(toFeature(field, c + 1));
  });
  checkWidth(features, width);
  return id === undefined ? { features } : { id, features };
}

function jsonRow(line: string, width?: number): BatchItem {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error('not valid JSON');
  }
  const body = Array.isArray(value) ? { features: value as unknown } : (value as object | null);
  const features = (body as { features?: unknown } | null)?.features;
  if (!Array.isArray(features)) throw new Error('expected {"features": [numbers, ...]}');
  features.forEach((v, i) => {
    if (typeof v !== 'number')
      throw new Error(`expected numbers, got ${quoted(JSON.stringify(v))}`);
    if (Math.abs(v) > FLOAT32_MAX) throw new Error(`features[${i}] is outside the float32 range`);
  });
  checkWidth(features, width);
  const id = (body as { id?: unknown }).id;
  if (id === undefined || id === null) return { features: features as number[] };
  if (typeof id !== 'string' && typeof id !== 'number') throw new Error('"id" must be a string');
  return { id: String(id), features: features as number[] };
}

/** Whether the file is read as CSV (by extension, else by its first character). */
function isCsv(path: string, firstLine: string): boolean {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return true;
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return false;
  return !/^\s*[[{]/.test(firstLine);
}

/**
 * Reads a CSV, JSON Lines or Parquet file as batch items, streamed (never the whole file).
 * CSV: an optional header row (a first row that is not all numbers); its `id` column becomes
 * the item id, the other columns are the features in order. Parquet: see readParquetRows.
 * Throws a CliError naming the line (Parquet: row).
 */
export async function* readRows(
  path: string,
  options: ReadRowsOptions = {},
): AsyncGenerator<FileRow> {
  if (isParquetFile(path)) {
    const { readParquetRows } = await import('./parquet-input.js');
    yield* readParquetRows(path, options);
    return;
  }
  if (options.columns) throw new CliError('--columns chooses the columns of a Parquet file');
  yield* readTextRows(path, options.width);
}

async function* readTextRows(path: string, width?: number): AsyncGenerator<FileRow> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let lineNo = 0;
  let csv: boolean | undefined;
  let layout: CsvLayout | undefined;
  try {
    for await (const raw of lines) {
      lineNo++;
      const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (line.trim() === '') continue;
      csv ??= isCsv(path, line);
      try {
        if (!csv) {
          yield { line: lineNo, item: jsonRow(line, width) };
          continue;
        }
        const fields = splitCsv(line);
        if (!layout) {
          const header = !fields.every((f) => NUMBER_RE.test(f));
          const idColumn = header ? fields.findIndex((f) => f.toLowerCase() === 'id') : -1;
          layout = { columns: fields.length, idColumn };
          if (header) continue;
        }
        yield { line: lineNo, item: csvRow(fields, layout, width) };
      } catch (err) {
        if (err instanceof CliError) throw err;
        throw new CliError(`${path} line ${lineNo}: ${(err as Error).message}`);
      }
    }
  } finally {
    lines.close();
  }
}

/**
 * Checks every row of a text file and resolves with how many there are. A Parquet file's types
 * are in its schema: only its columns are checked (a null or NaN stops the upload, which the
 * server then discards), and its footer gives the count.
 */
export async function countRows(path: string, options: ReadRowsOptions = {}): Promise<number> {
  if (isParquetFile(path)) {
    const { inspectParquet } = await import('./parquet-input.js');
    return inspectParquet(path, options);
  }
  let n = 0;
  for await (const row of readRows(path, options)) n += row ? 1 : 0;
  return n;
}

/** The file line of the `n`-th item (1-based), to name the line of a server-side rejection. */
export async function lineOfItem(path: string, n: number): Promise<number | undefined> {
  // Parquet has no blank or header rows: item n is row n.
  if (isParquetFile(path)) return n;
  let seen = 0;
  try {
    for await (const row of readRows(path)) {
      if (++seen === n) return row.line;
    }
  } catch {
    // The file changed since the upload; the item number is all we can name.
  }
  return undefined;
}
