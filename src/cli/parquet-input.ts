import type * as Hyparquet from 'hyparquet';
import type { BatchItem } from '../client/index.js';
import { CliError } from './cli-error.js';
import { FLOAT32_MAX } from '../shared/public-types.js';

/** How the rows of a Parquet file become batch items. */
export interface ParquetReadOptions {
  /** Values per row the model takes, when fixed. */
  width?: number;
  /** The model's feature names (model.json `features`), in model order. */
  featureNames?: string[];
  /** Feature columns chosen by the user (`--columns`), in model order. */
  columns?: string[];
}

/** One item of a Parquet file, with its 1-based row number. */
export interface ParquetRow {
  line: number;
  item: BatchItem;
}

interface Libraries {
  hyparquet: typeof Hyparquet;
  compressors?: Hyparquet.Compressors;
}

const INSTALL_HINT =
  'reading Parquet needs the package hyparquet (and hyparquet-compressors for zstd, gzip, ' +
  'brotli or lz4 files): npm install hyparquet@1.31.5 hyparquet-compressors@1.1.2';

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ERR_MODULE_NOT_FOUND';
}

// Loaded only when a Parquet file is read: the client package lists them as optional.
async function libraries(): Promise<Libraries> {
  let hyparquet: typeof Hyparquet;
  try {
    hyparquet = await import('hyparquet');
  } catch (err) {
    if (isMissing(err)) throw new CliError(INSTALL_HINT);
    throw err;
  }
  try {
    const { compressors } = await import('hyparquet-compressors');
    return { hyparquet, compressors };
  } catch (err) {
    // Snappy (the usual codec) is built into hyparquet; the others fail by name when met.
    if (isMissing(err)) return { hyparquet };
    throw err;
  }
}

const NUMERIC_TYPES = new Set(['FLOAT', 'DOUBLE', 'INT32', 'INT64']);
const INTEGER_ANNOTATIONS = new Set([
  'INT_8',
  'INT_16',
  'INT_32',
  'INT_64',
  'UINT_8',
  'UINT_16',
  'UINT_32',
  'UINT_64',
]);

/** A plain number column: not a date, a time, a decimal, a list or a struct. */
function isNumeric(element: Hyparquet.SchemaElement): boolean {
  if (!element.type || !NUMERIC_TYPES.has(element.type) || element.num_children) return false;
  const annotation = element.converted_type;
  if (annotation && !INTEGER_ANNOTATIONS.has(annotation)) return false;
  const logical = element.logical_type?.type;
  return logical === undefined || logical === 'INTEGER';
}

interface Layout {
  features: string[];
  id?: string;
}

function listed(names: string[]): string {
  const shown = names.slice(0, 8).map((n) => `'${n}'`);
  return names.length > 8 ? `${shown.join(', ')}, …` : shown.join(', ');
}

/** Picks the feature columns (`--columns`, else the model's names, else every number column). */
function chooseColumns(path: string, schema: Hyparquet.SchemaTree, options: ParquetReadOptions) {
  const columns = new Map(schema.children.map((c) => [c.element.name, c.element]));
  const id = [...columns.keys()].find((name) => name.toLowerCase() === 'id');
  let features: string[];
  if (options.columns) {
    features = options.columns;
    const absent = features.filter((name) => !columns.has(name));
    if (absent.length > 0)
      throw new CliError(
        `${path} has no column ${listed(absent)} (it has ${listed([...columns.keys()])})`,
      );
  } else if (options.featureNames?.every((name) => columns.has(name))) {
    features = options.featureNames;
  } else {
    features = [...columns.values()]
      .filter((e) => e.name !== id && isNumeric(e))
      .map((e) => e.name);
  }
  const wrong = features.filter((name) => {
    const element = columns.get(name);
    return !element || !isNumeric(element);
  });
  if (wrong.length > 0)
    throw new CliError(`${path}: column ${listed(wrong)} does not hold plain numbers`);
  const { width } = options;
  if (width !== undefined && features.length !== width) {
    const how = options.columns ? '--columns names' : `${path} has`;
    throw new CliError(
      `the model takes ${width} features; ${how} ${features.length} number columns ` +
        `(${listed(features)}): choose ${width} with --columns a,b,c in the model's order`,
    );
  }
  const layout: Layout = { features };
  if (id !== undefined && !features.includes(id)) layout.id = id;
  return layout;
}

function toFeature(value: unknown, column: string): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (n === null || n === undefined) throw new Error(`column '${column}' is empty`);
  if (typeof n !== 'number') throw new Error(`column '${column}' holds ${typeof n}, not a number`);
  if (!Number.isFinite(n) || Math.abs(n) > FLOAT32_MAX)
    throw new Error(`column '${column}' holds ${n}, outside the float32 range`);
  return n;
}

/** The values of one column over a row range, as hyparquet hands them over (page by page). */
class ColumnValues {
  private segments: { start: number; data: ArrayLike<unknown> }[] = [];
  private current = 0;

  add(start: number, data: ArrayLike<unknown>): void {
    this.segments.push({ start, data });
    this.segments.sort((a, b) => a.start - b.start);
  }

  /** The value of row `row`; rows are asked for in increasing order. */
  at(row: number): unknown {
    for (;;) {
      const segment = this.segments[this.current];
      if (!segment) return undefined;
      if (row < segment.start + segment.data.length) return segment.data[row - segment.start];
      this.current++;
    }
  }
}

function toItem(row: number, layout: Layout, values: Map<string, ColumnValues>): BatchItem {
  const features = layout.features.map((name) => toFeature(values.get(name)?.at(row), name));
  const id = layout.id === undefined ? undefined : values.get(layout.id)?.at(row);
  if (id === undefined || id === null) return { features };
  if (typeof id !== 'string' && typeof id !== 'number' && typeof id !== 'bigint')
    throw new Error(`column '${layout.id}' must hold strings or numbers`);
  return { id: String(id), features };
}

interface Source {
  path: string;
  file: Hyparquet.AsyncBuffer;
  metadata: Hyparquet.FileMetaData;
}

/** Reads rows [start, end) of the file column by column. */
async function readRange(
  libs: Libraries,
  source: Source,
  columns: string[],
  [rowStart, rowEnd]: [number, number],
): Promise<Map<string, ColumnValues>> {
  const values = new Map(columns.map((name) => [name, new ColumnValues()]));
  // onChunk hands over each column's decoded pages: rows are never built as arrays.
  await libs.hyparquet
    .parquetRead({
      file: source.file,
      metadata: source.metadata,
      columns,
      rowStart,
      rowEnd,
      compressors: libs.compressors,
      onChunk: (chunk) => values.get(chunk.columnName)?.add(chunk.rowStart, chunk.columnData),
    })
    .catch((err: unknown) => {
      throw new CliError(`cannot read ${source.path}: ${(err as Error).message}`);
    });
  return values;
}

/** The row groups of the file as [start, end) row ranges. */
function* rowGroups(metadata: Hyparquet.FileMetaData): Generator<[number, number]> {
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    if (end > start) yield [start, end];
    start = end;
  }
}

async function openFile(path: string, { hyparquet }: Libraries) {
  const file = await hyparquet.asyncBufferFromFile(path);
  try {
    return { file, metadata: await hyparquet.parquetMetadataAsync(file) };
  } catch (err) {
    throw new CliError(`${path} is not a Parquet file: ${(err as Error).message}`);
  }
}

/**
 * Checks that the file's columns fit the model (as readParquetRows would choose them) and
 * resolves with its row count, from the footer alone: no row is read.
 */
export async function inspectParquet(
  path: string,
  options: ParquetReadOptions = {},
): Promise<number> {
  const libs = await libraries();
  const { metadata } = await openFile(path, libs);
  chooseColumns(path, libs.hyparquet.parquetSchema(metadata), options);
  return Number(metadata.num_rows);
}

/**
 * Reads a Parquet file as batch items, one row group at a time: never the whole file (memory
 * follows the row group size, since hyparquet decodes a column chunk whole). The features are
 * `options.columns`, else the model's feature names when the file has them all, else every
 * plain number column but `id`, in file order; an `id` column becomes the item id. Throws a
 * CliError naming the row of a bad value.
 */
export async function* readParquetRows(
  path: string,
  options: ParquetReadOptions = {},
): AsyncGenerator<ParquetRow> {
  const libs = await libraries();
  const { file, metadata } = await openFile(path, libs);
  const layout = chooseColumns(path, libs.hyparquet.parquetSchema(metadata), options);
  const columns = layout.id === undefined ? layout.features : [...layout.features, layout.id];
  for (const range of rowGroups(metadata)) {
    const values = await readRange(libs, { path, file, metadata }, columns, range);
    for (let row = range[0]; row < range[1]; row++) {
      let item: BatchItem;
      try {
        item = toItem(row, layout, values);
      } catch (err) {
        throw new CliError(`${path} row ${row + 1}: ${(err as Error).message}`);
      }
      yield { line: row + 1, item };
    }
  }
}
