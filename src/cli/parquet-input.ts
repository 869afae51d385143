import { open, type FileHandle } from 'node:fs/promises';
import type * as Hyparquet from 'hyparquet';
import type { PageLocation } from 'hyparquet/src/types.js';
import type { BatchItem } from '../client/index.js';
import { CliError } from './cli-error.js';
import {
  isFlat,
  pageFunctions,
  readIds,
  readNumbers,
  readsIds,
  reusingCompressors,
  type PageFunctions,
  type PagedFile,
} from './parquet-pages.js';
import { FLOAT32_MAX } from '../shared/public-types.js';
import { Utf8Lines } from '../shared/utf8-lines.js';

/** How the rows of a Parquet file become batch items. */
export interface ParquetReadOptions {
  /** Values per row the model takes, when fixed. */
  width?: number;
  /** The model's feature names (model.json `features`), in model order. */
  featureNames?: string[];
  /** Feature columns chosen by the user (`--columns`), in model order. */
  columns?: string[];
  /** Most rows read at once (default: see rowRanges). */
  rangeRows?: number;
}

/** One item of a Parquet file, with its 1-based row number. */
export interface ParquetRow {
  line: number;
  item: BatchItem;
}

interface Libraries {
  hyparquet: typeof Hyparquet;
  pages: PageFunctions;
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
  let pages: PageFunctions;
  try {
    [hyparquet, pages] = await Promise.all([import('hyparquet'), pageFunctions()]);
  } catch (err) {
    if (isMissing(err)) throw new CliError(INSTALL_HINT);
    throw err;
  }
  try {
    const { compressors } = await import('hyparquet-compressors');
    return { hyparquet, pages, compressors };
  } catch (err) {
    // Snappy (the usual codec) is built into hyparquet; the others fail by name when met.
    if (isMissing(err)) return { hyparquet, pages };
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

/** One row group's columns, the features checked and packed as doubles. */
interface GroupColumns {
  /** Row number (0-based) of the group's first row in the file. */
  start: number;
  rows: number;
  /** The feature columns, in model order; a bad value is NaN (see `bad`). */
  features: Float64Array[];
  id?: ArrayLike<unknown>;
  /** The group's first bad value, by row then column: the row that stops the upload. */
  bad?: { row: number; message: string };
}

/** A row's id as the item carries it (undefined: none). */
function itemId(value: unknown, column: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'bigint')
    throw new Error(`column '${column}' must hold strings or numbers`);
  return String(value);
}

/**
 * A column's decoded pages (hyparquet hands them over page by page), in row order; `start` is the
 * row of a page's first value, counted from the start of the range read.
 */
type Pages = { start: number; data: ArrayLike<unknown> }[];

/**
 * Calls `take` with the values of rows [0, rows) of the pages in row order; returns the row after
 * the last one taken. A page may begin before the range (hyparquet decodes the page holding the
 * range's first row whole) or run past its end.
 */
function eachValue(pages: Pages, rows: number, take: (value: unknown, row: number) => void) {
  let row = 0;
  for (const { start, data } of pages) {
    for (let i = row - start; i < data.length && row < rows; i++, row++) take(data[i], row);
  }
  return row;
}

/**
 * Packs one column's pages into doubles, checking each value: the first bad one is noted (and NaN
 * stored), not thrown, so that the rows before it still go up.
 */
function packFeature(
  pages: Pages,
  values: Float64Array,
  column: string,
): { values: Float64Array; bad?: { row: number; message: string } } {
  const rows = values.length;
  values.fill(NaN);
  let bad: { row: number; message: string } | undefined;
  const read = eachValue(pages, rows, (value, row) => {
    if (typeof value === 'number' && Math.abs(value) <= FLOAT32_MAX) {
      values[row] = value;
      return;
    }
    try {
      values[row] = toFeature(value, column);
    } catch (err) {
      bad ??= { row, message: (err as Error).message };
    }
  });
  if (read < rows) bad ??= { row: read, message: `column '${column}' is empty` };
  return bad ? { values, bad } : { values };
}

interface Source extends PagedFile {
  path: string;
  /** Offset indexes read so far, by `<group>:<column>` (each is read once). */
  indexes: Map<string, Promise<PageLocation[] | undefined>>;
}

/** Rows [from, to) of row group `group` (whose first row is row `groupStart` of the file). */
interface Range {
  group: number;
  groupStart: number;
  from: number;
  to: number;
}

/** The decoded pages of one column over rows [start, end), in row order. */
async function readColumn(
  libs: Libraries,
  source: Source,
  column: string,
  [rowStart, rowEnd]: [number, number],
): Promise<Pages> {
  const pages: Pages = [];
  await libs.hyparquet
    .parquetRead({
      file: source.file,
      metadata: source.metadata,
      columns: [column],
      rowStart,
      rowEnd,
      // Only the pages of the range, where the file has an offset index (most writers' default).
      useOffsetIndex: true,
      compressors: libs.compressors,
      onChunk: (chunk) => pages.push({ start: chunk.rowStart - rowStart, data: chunk.columnData }),
    })
    .catch((err: unknown) => {
      throw new CliError(`cannot read ${source.path}: ${(err as Error).message}`);
    });
  return pages.sort((a, b) => a.start - b.start);
}

/**
 * Reads a range of rows one column at a time into `buffers` (one per feature): flat columns
 * page by page straight into doubles and id strings (see parquet-pages.ts), others through
 * hyparquet's reading, packed as soon as they are decoded (hyparquet gives a nullable column as
 * an array of boxed numbers).
 */
async function readRange(
  libs: Libraries,
  source: Source,
  layout: Layout,
  range: Range,
  buffers: Float64Array[],
): Promise<GroupColumns> {
  const { groupStart, from, to } = range;
  const rows = to - from;
  const span: [number, number] = [groupStart + from, groupStart + to];
  const group: GroupColumns = { start: span[0], rows, features: [] };
  for (const [c, name] of layout.features.entries()) {
    const into = buffers[c]!.subarray(0, rows);
    let bad: { row: number; message: string } | undefined;
    if (isFlat(libs.pages, source, name)) {
      const pages = await offsetIndex(libs, source, range.group, name);
      bad = await readNumbers(libs.pages, source, name, { ...range, pages }, into).catch(
        (err: unknown) => {
          throw new CliError(`cannot read ${source.path}: ${(err as Error).message}`);
        },
      );
    } else {
      ({ bad } = packFeature(await readColumn(libs, source, name, span), into, name));
    }
    group.features.push(into);
    // The first bad value in row order; within a row, the first column (columns go in order).
    if (bad && (!group.bad || bad.row < group.bad.row)) group.bad = bad;
  }
  const id = layout.id;
  if (id !== undefined) {
    const ids = new Array<unknown>(rows);
    if (readsIds(libs.pages, source, id)) {
      const pages = await offsetIndex(libs, source, range.group, id);
      await readIds(libs.pages, source, id, { ...range, pages }, ids).catch((err: unknown) => {
        throw new CliError(`cannot read ${source.path}: ${(err as Error).message}`);
      });
    } else {
      eachValue(await readColumn(libs, source, id, span), rows, (value, row) => (ids[row] = value));
    }
    group.id = ids;
  }
  return group;
}

/**
 * Most rows read at once. Writers often put a million rows or more in one row group (pyarrow's
 * default is 1Mi rows): read whole, such a group of 30 double columns peaked at 430-850 MB of a
 * 1M-row upload. Where a group's column chunks have no offset index, each range costs hyparquet
 * the chunks' bytes again (pages before the range are skipped undecoded): 1.6x the reading time
 * of a whole 1M-row group in ranges of this size, measured on a 234 MB file.
 */
const MAX_RANGE_ROWS = 131_072;

/**
 * Where the chunks have an offset index (most writers' default), a range is a run of whole pages
 * of the first feature column: only those pages are read and decoded (hyparquet decodes a page
 * whole, so a range that cut pages would decode them more than once). Pages are merged up to
 * this many rows, and never past PAGED_MAX_ROWS.
 */
const MIN_PAGED_ROWS = 32_768;
/**
 * Most rows of a range of pages. A range holds its rows' features as doubles while they are
 * written out (8 MB a column per million rows): pyarrow's and hyparquet-writer's pages of
 * doubles hold 131,071 rows, and read whole, each of 30 columns held 31 MB; in halves, each page
 * is decompressed twice (cheap next to turning its values into text).
 */
const PAGED_MAX_ROWS = 65_536;

/** The offset index of column `name` in row group `group`, when the file has one (read once). */
function offsetIndex(
  libs: Libraries,
  source: Source,
  group: number,
  name: string | undefined,
): Promise<PageLocation[] | undefined> {
  const key = `${group}:${name}`;
  let index = source.indexes.get(key);
  if (!index) {
    index = readOffsetIndex(libs, source, group, name);
    source.indexes.set(key, index);
  }
  return index;
}

async function readOffsetIndex(
  libs: Libraries,
  source: Source,
  group: number,
  name: string | undefined,
): Promise<PageLocation[] | undefined> {
  const chunk = source.metadata.row_groups[group]?.columns.find(
    (c) => c.meta_data?.path_in_schema[0] === name,
  );
  const offset = chunk?.offset_index_offset;
  const length = chunk?.offset_index_length;
  if (offset === undefined || !length) return undefined;
  const bytes = await source.file.slice(Number(offset), Number(offset) + length);
  return libs.hyparquet.readOffsetIndex({ view: new DataView(bytes), offset: 0 }).page_locations;
}

/**
 * The file's rows as [start, end) ranges within its row groups: at most `most` rows each when
 * given, else runs of whole pages where the group has an offset index, else MAX_RANGE_ROWS.
 */
async function rowRanges(
  libs: Libraries,
  source: Source,
  column: string | undefined,
  most: number | undefined,
): Promise<Range[]> {
  const ranges: Range[] = [];
  let groupStart = 0;
  for (const [group, { num_rows }] of source.metadata.row_groups.entries()) {
    const rows = Number(num_rows);
    const locations =
      most === undefined ? await offsetIndex(libs, source, group, column) : undefined;
    const pages = locations?.map((page) => Number(page.first_row_index));
    const add = (from: number, to: number) => ranges.push({ group, groupStart, from, to });
    if (pages && pages.length > 0) {
      let from = 0;
      for (const [i, first] of [...pages.slice(1), rows].entries()) {
        const merged = first - from >= MIN_PAGED_ROWS || first === rows;
        const next = pages[i + 2] ?? rows;
        if (merged || next - from > PAGED_MAX_ROWS) {
          // A page longer than PAGED_MAX_ROWS goes in equal parts (each decodes it again).
          const parts = Math.ceil((first - from) / PAGED_MAX_ROWS);
          const size = Math.ceil((first - from) / parts);
          for (let at = from; at < first; at += size) add(at, Math.min(first, at + size));
          from = first;
        }
      }
    } else {
      const size = most ?? MAX_RANGE_ROWS;
      for (let from = 0; from < rows; from += size) add(from, Math.min(rows, from + size));
    }
    groupStart += rows;
  }
  return ranges;
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
 * The file's rows a range at a time (see rowRanges), each as its columns: valid until the next
 * range is asked for (their buffers are used again).
 */
async function* groupsOf(
  path: string,
  options: ParquetReadOptions,
): AsyncGenerator<{ group: GroupColumns; layout: Layout }> {
  const libs = await libraries();
  const { file, metadata } = await openFile(path, libs);
  const schema = libs.hyparquet.parquetSchema(metadata);
  const layout = chooseColumns(path, schema, options);
  const handle = await open(path, 'r');
  try {
    const source: Source = {
      path,
      file,
      metadata,
      schema,
      // Pages read into one buffer and decompressed into another, both used again page after
      // page: the bytes of a 1M-row upload do not pass through the heap a page at a time.
      compressors: reusingCompressors(libs.hyparquet.snappyUncompress, libs.compressors),
      read: reusingReader(handle),
      indexes: new Map(),
    };
    const ranges = await rowRanges(libs, source, layout.features[0], options.rangeRows);
    // One buffer per feature column for every range: a range is used up before the next is read.
    const rows = ranges.reduce((most, { from, to }) => Math.max(most, to - from), 0);
    const buffers = layout.features.map(() => new Float64Array(rows));
    for (const range of ranges)
      yield { group: await readRange(libs, source, layout, range, buffers), layout };
  } finally {
    await handle.close();
  }
}

/** Reads byte spans of a file into one buffer, grown as needed and used again each time. */
function reusingReader(handle: FileHandle): (start: number, end: number) => Promise<DataView> {
  let buffer = new Uint8Array(0);
  return async (start, end) => {
    const length = end - start;
    if (buffer.length < length) buffer = new Uint8Array(Math.max(length, buffer.length * 2));
    for (let done = 0; done < length;) {
      const { bytesRead } = await handle.read(buffer, done, length - done, start + done);
      if (bytesRead === 0) throw new Error(`the file ends before byte ${start + done}`);
      done += bytesRead;
    }
    return new DataView(buffer.buffer, 0, length);
  };
}

/** Runs `read` for row `row` of the group, naming the file's row when it throws. */
function atRow<T>(path: string, group: GroupColumns, row: number, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new CliError(`${path} row ${group.start + row + 1}: ${(err as Error).message}`);
  }
}

/** The features of row `row` of a group; throws at the group's first bad row. */
function featuresAt(group: GroupColumns, row: number): Float64Array[] {
  if (group.bad && row === group.bad.row) throw new Error(group.bad.message);
  return group.features;
}

/**
 * Reads a Parquet file as batch items, at most MAX_RANGE_ROWS rows at a time whatever its row
 * groups: never the whole file, nor a whole large row group. The features are
 * `options.columns`, else the model's feature names when the file has them all, else every
 * plain number column but `id`, in file order; an `id` column becomes the item id. Throws a
 * CliError naming the row of a bad value.
 */
export async function* readParquetRows(
  path: string,
  options: ParquetReadOptions = {},
): AsyncGenerator<ParquetRow> {
  for await (const { group, layout } of groupsOf(path, options)) {
    for (let row = 0; row < group.rows; row++) {
      const item = atRow(path, group, row, (): BatchItem => {
        const features = featuresAt(group, row).map((column) => column[row] ?? NaN);
        const id = group.id && itemId(group.id[row], layout.id ?? 'id');
        return id === undefined ? { features } : { id, features };
      });
      yield { line: group.start + row + 1, item };
    }
  }
}

/** Rows encoded per block of NDJSON bytes handed to the upload. */
const ROWS_PER_BLOCK = 1_000;

/**
 * The rows of a Parquet file as the NDJSON of an upload (`{"id"?, "features": [...]}`, one line
 * per row, so the server's line numbers are the file's rows), in blocks of bytes, a range of
 * rows at a time. Every value is checked as readParquetRows checks it; each line is written straight
 * from the columns (items and their JSON.stringify made most of the garbage of a 1M-row upload).
 */
export async function* parquetNdjson(
  path: string,
  options: ParquetReadOptions = {},
): AsyncGenerator<Uint8Array> {
  // One buffer encodes every block; each goes up as a copy of its exact size.
  let lines: Utf8Lines | undefined;
  for await (const { group, layout } of groupsOf(path, options)) {
    lines ??= new Utf8Lines(ROWS_PER_BLOCK * 12 * (group.features.length + 2));
    for (let from = 0; from < group.rows; from += ROWS_PER_BLOCK) {
      const to = Math.min(group.rows, from + ROWS_PER_BLOCK);
      for (let row = from; row < to; row++) {
        lines.push(
          atRow(path, group, row, () => {
            const columns = featuresAt(group, row);
            let features = String(columns[0]?.[row]);
            for (let c = 1; c < columns.length; c++) features += `,${columns[c]![row]}`;
            const id = group.id && itemId(group.id[row], layout.id ?? 'id');
            return id === undefined
              ? `{"features":[${features}]}`
              : `{"id":${JSON.stringify(id)},"features":[${features}]}`;
          }),
        );
      }
      yield lines.take();
    }
  }
}
