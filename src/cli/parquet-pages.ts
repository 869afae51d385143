import type * as Hyparquet from 'hyparquet';
import type * as Columns from 'hyparquet/src/column.js';
import type * as Convert from 'hyparquet/src/convert.js';
import type * as DataPages from 'hyparquet/src/datapage.js';
import type * as Encoding from 'hyparquet/src/encoding.js';
import type * as Plain from 'hyparquet/src/plain.js';
import type * as Schema from 'hyparquet/src/schema.js';
import type { ColumnDecoder, PageLocation } from 'hyparquet/src/types.js';
import { FLOAT32_MAX } from '../shared/public-types.js';

/*
 * Flat number columns read page by page straight into doubles. hyparquet's own reading hands a
 * nullable column (what most writers write by default) over as an array of boxed numbers, built
 * value by value from its definition levels: for a million rows of 30 columns, 30 million heap
 * numbers that the CLI only copies into a Float64Array. Here the pages are found, decompressed
 * and decoded by hyparquet's own functions (the package exports its modules), and only the last
 * step, placing the values of a flat column at their rows, is done here.
 */

/** hyparquet's page functions. */
export interface PageFunctions {
  columns: typeof Columns;
  convert: typeof Convert;
  dataPages: typeof DataPages;
  encoding: typeof Encoding;
  plain: typeof Plain;
  schema: typeof Schema;
}

/** Loads hyparquet's page functions (the package is optional: loaded with it). */
export async function pageFunctions(): Promise<PageFunctions> {
  const [columns, convert, dataPages, encoding, plain, schema] = await Promise.all([
    import('hyparquet/src/column.js'),
    import('hyparquet/src/convert.js'),
    import('hyparquet/src/datapage.js'),
    import('hyparquet/src/encoding.js'),
    import('hyparquet/src/plain.js'),
    import('hyparquet/src/schema.js'),
  ]);
  return { columns, convert, dataPages, encoding, plain, schema };
}

/** A file whose pages are read. */
export interface PagedFile {
  file: Hyparquet.AsyncBuffer;
  metadata: Hyparquet.FileMetaData;
  schema: Hyparquet.SchemaTree;
  compressors?: Hyparquet.Compressors;
  /**
   * Reads bytes [start, end) into a buffer of its own that the next call may use again: the
   * pages of a span are decoded before the next span is read (default: `file.slice`).
   */
  read?: (start: number, end: number) => Promise<DataView>;
}

/**
 * Decompressors that write into one buffer used again for every page (snappy, the usual codec:
 * a page's values are placed before the next page is decompressed); others as given.
 */
export function reusingCompressors(
  snappy: (input: Uint8Array, output: Uint8Array) => void,
  others: Hyparquet.Compressors = {},
): Hyparquet.Compressors {
  let out = new Uint8Array(0);
  return {
    ...others,
    SNAPPY: (input, size) => {
      if (out.length < size) out = new Uint8Array(Math.max(size, out.length * 2));
      const page = out.subarray(0, size);
      snappy(input, page);
      return page;
    },
  };
}

/** Rows [from, to) of one row group, and where the column's pages are. */
export interface RowSpan {
  /** Index of the row group. */
  group: number;
  /** Rows within the group. */
  from: number;
  to: number;
  /** Offset index of the column's chunk in this group, when the file has one. */
  pages?: PageLocation[];
}

/** The first bad value of a range: its row (from the range's start) and what is wrong. */
export interface BadValue {
  row: number;
  message: string;
}

/** Whether readNumbers can read column `name`: a top-level column that is not repeated. */
export function isFlat(fns: PageFunctions, file: PagedFile, name: string): boolean {
  const path = fns.schema.getTreePath(file.schema, [name]);
  return path.length === 2 && path[1]?.element.repetition_type !== 'REPEATED';
}

function describe(value: unknown, column: string): string {
  if (value === null || value === undefined) return `column '${column}' is empty`;
  if (typeof value !== 'number') return `column '${column}' holds ${typeof value}, not a number`;
  return `column '${column}' holds ${value}, outside the float32 range`;
}

/** A column chunk as the page walker reads it. */
interface ChunkReader {
  meta: Hyparquet.ColumnMetaData;
  element: Hyparquet.SchemaElement;
  decoder: ColumnDecoder;
  maxDefinition: number;
}

function chunkReader(
  fns: PageFunctions,
  source: PagedFile,
  name: string,
  group: number,
): ChunkReader {
  const chunk = source.metadata.row_groups[group]?.columns.find(
    (c) => c.meta_data?.path_in_schema[0] === name,
  );
  const meta = chunk?.meta_data;
  if (!meta) throw new Error(`parquet column ${name} has no metadata`);
  const schemaPath = fns.schema.getTreePath(source.schema, [name]);
  const element = schemaPath[schemaPath.length - 1]!.element;
  const decoder: ColumnDecoder = {
    pathInSchema: [name],
    type: meta.type,
    element,
    schemaPath,
    codec: meta.codec,
    parsers: fns.convert.DEFAULT_PARSERS,
    compressors: source.compressors,
  };
  return { meta, element, decoder, maxDefinition: fns.schema.getMaxDefinitionLevel(schemaPath) };
}

/** A data page met by the walker: its first row (in the group), its rows and header. */
interface PageAt {
  row: number;
  rows: number;
  header: Hyparquet.PageHeader;
  /** The page's bytes as stored (compressed). */
  bytes: Uint8Array;
  /** The dictionary of the chunk, decoded, when it has one. */
  dictionary: Hyparquet.DecodedArray | undefined;
}

/**
 * Calls `each` for every data page of the chunk that holds rows of [from, to), in row order;
 * resolves with the row after the last page read. Only the pages that hold the rows are read
 * where the chunk has an offset index, else the whole chunk (pages before `from` undecoded).
 */
async function walkPages(
  fns: PageFunctions,
  source: PagedFile,
  chunk: ChunkReader,
  range: RowSpan,
  each: (page: PageAt) => void,
): Promise<number> {
  const { from, to, pages } = range;
  const { meta, element, decoder } = chunk;
  const chunkStart = Number(meta.dictionary_page_offset || meta.data_page_offset);
  const chunkEnd = chunkStart + Number(meta.total_compressed_size);

  // The byte spans to read, in order: the dictionary page (if any) and the pages of the rows.
  const spans: [number, number][] = [];
  let row = 0;
  if (pages && pages.length > 0) {
    const firstRow = (i: number) => Number(pages[i]?.first_row_index ?? Number.MAX_SAFE_INTEGER);
    let a = 0;
    while (a + 1 < pages.length && firstRow(a + 1) <= from) a++;
    let b = a;
    while (b + 1 < pages.length && firstRow(b + 1) < to) b++;
    const dataStart = Number(pages[0]!.offset);
    // A dictionary page sits before the first data page (polars leaves its offset out).
    if (chunkStart < dataStart) spans.push([chunkStart, dataStart]);
    const last = pages[b]!;
    spans.push([Number(pages[a]!.offset), Number(last.offset) + last.compressed_page_size]);
    row = firstRow(a);
  } else {
    spans.push([chunkStart, chunkEnd]);
  }

  let dictionary: Hyparquet.DecodedArray | undefined;
  for (const [start, end] of spans) {
    const view = source.read
      ? await source.read(start, end)
      : new DataView(await source.file.slice(start, end));
    const reader = { view, offset: 0 };
    while (row < to && reader.offset < view.byteLength - 1) {
      const header = fns.columns.parquetHeader(reader);
      const bytes = new Uint8Array(
        view.buffer,
        view.byteOffset + reader.offset,
        header.compressed_page_size,
      );
      reader.offset += header.compressed_page_size;
      if (header.type === 'DICTIONARY_PAGE' && header.dictionary_page_header) {
        const page = fns.dataPages.decompressPage(
          bytes,
          Number(header.uncompressed_page_size),
          meta.codec,
          source.compressors,
        );
        const plain = {
          view: new DataView(page.buffer, page.byteOffset, page.byteLength),
          offset: 0,
        };
        const values = fns.plain.readPlain(
          plain,
          meta.type,
          header.dictionary_page_header.num_values,
          element.type_length,
        );
        // A copy: the values may be a view of a buffer the next page is decompressed into.
        dictionary = fns.convert.convert(values.slice(), decoder);
        continue;
      }
      const rows = header.data_page_header?.num_values ?? header.data_page_header_v2?.num_rows ?? 0;
      if (!header.data_page_header && !header.data_page_header_v2) continue; // an index page
      if (row + rows > from) each({ row, rows, header, bytes, dictionary });
      row += rows;
    }
  }
  return row;
}

/** The values and definition levels of a data page, decoded by hyparquet. */
function decodePage(fns: PageFunctions, source: PagedFile, chunk: ChunkReader, page: PageAt) {
  const { header, bytes } = page;
  const { decoder, meta } = chunk;
  let decoded: ReturnType<typeof DataPages.readDataPage>;
  let encoding: Hyparquet.Encoding;
  if (header.data_page_header) {
    const unpacked = fns.dataPages.decompressPage(
      bytes,
      Number(header.uncompressed_page_size),
      meta.codec,
      source.compressors,
    );
    decoded = fns.dataPages.readDataPage(unpacked, header.data_page_header, decoder);
    encoding = header.data_page_header.encoding;
  } else {
    decoded = fns.dataPages.readDataPageV2(bytes, header, decoder);
    encoding = header.data_page_header_v2!.encoding;
  }
  return {
    // Placed at once by the caller: they may be a view of a buffer the next page goes into.
    values: fns.convert.convertWithDictionary(decoded.dataPage, page.dictionary, encoding, decoder),
    levels: decoded.definitionLevels ?? [],
  };
}

/**
 * Reads rows [from, to) of the flat number column `name` of one row group into `into` (to -
 * from values), checking each: a missing or non-float32 value is stored as NaN and the first is
 * returned. Only the pages that hold the rows are read where the chunk has an offset index.
 */
export async function readNumbers(
  fns: PageFunctions,
  source: PagedFile,
  name: string,
  range: RowSpan,
  into: Float64Array,
): Promise<BadValue | undefined> {
  const { from, to } = range;
  const chunk = chunkReader(fns, source, name, range.group);
  let bad: BadValue | undefined;
  const note = (at: number, message: string) => {
    if (!bad || at < bad.row) bad = { row: at, message };
  };
  const end = await walkPages(fns, source, chunk, range, (page) => {
    const { values, levels } = decodePage(fns, source, chunk, page);
    let v = 0;
    for (let i = 0, row = page.row; i < page.rows; i++, row++) {
      const present = levels.length === 0 || levels[i] === chunk.maxDefinition;
      if (row < from || row >= to) {
        if (present) v++;
        continue;
      }
      const at = row - from;
      const value: unknown = present ? values[v++] : null;
      const n = typeof value === 'bigint' ? Number(value) : value;
      if (typeof n === 'number' && Math.abs(n) <= FLOAT32_MAX) {
        into[at] = n;
      } else {
        into[at] = NaN;
        note(at, describe(n, name));
      }
    }
  });
  if (end < to) {
    into.fill(NaN, Math.max(0, end - from));
    note(Math.max(0, end - from), `column '${name}' is empty`);
  }
  return bad;
}

/** Whether readIds reads column `name`: flat UTF-8 strings, as an id column is written. */
export function readsIds(fns: PageFunctions, file: PagedFile, name: string): boolean {
  const element = fns.schema.getTreePath(file.schema, [name])[1]?.element;
  return (
    isFlat(fns, file, name) &&
    element?.type === 'BYTE_ARRAY' &&
    (element.converted_type === 'UTF8' || element.logical_type?.type === 'STRING')
  );
}

/**
 * Reads rows [from, to) of the id column `name` (see readsIds) into `into` (undefined for a
 * null). Pages of plain strings (the usual encoding of unique ids) are decoded here straight
 * from their bytes to strings: hyparquet makes a Uint8Array view of every value first, which for
 * a 1M-row upload was a 25 MB spike of garbage a page at a time. Other pages go through hyparquet.
 */
export async function readIds(
  fns: PageFunctions,
  source: PagedFile,
  name: string,
  range: RowSpan,
  into: unknown[],
): Promise<void> {
  const { from, to } = range;
  const chunk = chunkReader(fns, source, name, range.group);
  const place = (row: number, value: unknown) => {
    if (row >= from && row < to) into[row - from] = value;
  };
  await walkPages(fns, source, chunk, range, (page) => {
    const plain = plainStrings(fns, source, chunk, page);
    if (!plain) {
      const { values, levels } = decodePage(fns, source, chunk, page);
      let v = 0;
      for (let i = 0; i < page.rows; i++) {
        const present = levels.length === 0 || levels[i] === chunk.maxDefinition;
        place(page.row + i, present ? values[v++] : undefined);
      }
      return;
    }
    const { text, levels } = plain;
    let at = 0;
    for (let i = 0; i < page.rows; i++) {
      if (levels && levels[i] !== chunk.maxDefinition) {
        place(page.row + i, undefined);
        continue;
      }
      const length = text.readUInt32LE(at);
      const row = page.row + i;
      if (row >= from && row < to)
        into[row - from] = text.toString('utf8', at + 4, at + 4 + length);
      at += 4 + length;
    }
  });
}

/**
 * The bytes of a page of plain strings with its definition levels (undefined: no nulls), or
 * undefined for any other page.
 */
function plainStrings(
  fns: PageFunctions,
  source: PagedFile,
  chunk: ChunkReader,
  page: PageAt,
): { text: Buffer; levels?: number[] } | undefined {
  const { header, bytes } = page;
  const { meta, maxDefinition } = chunk;
  const width = 32 - Math.clz32(maxDefinition);
  if (header.data_page_header?.encoding === 'PLAIN') {
    const unpacked = fns.dataPages.decompressPage(
      bytes,
      Number(header.uncompressed_page_size),
      meta.codec,
      source.compressors,
    );
    const view = new DataView(unpacked.buffer, unpacked.byteOffset, unpacked.byteLength);
    let start = 0;
    let levels: number[] | undefined;
    if (maxDefinition > 0) {
      // Levels first, RLE with a 4-byte length (no repetition levels: the column is flat).
      const length = view.getUint32(0, true);
      levels = new Array<number>(page.rows);
      fns.encoding.readRleBitPackedHybrid({ view, offset: 4 }, width, levels, length);
      start = 4 + length;
    }
    const text = Buffer.from(
      unpacked.buffer,
      unpacked.byteOffset + start,
      unpacked.byteLength - start,
    );
    return { text, ...(levels ? { levels } : {}) };
  }
  const v2 = header.data_page_header_v2;
  if (v2?.encoding === 'PLAIN') {
    const skip = v2.repetition_levels_byte_length + v2.definition_levels_byte_length;
    let levels: number[] | undefined;
    if (maxDefinition > 0 && v2.num_nulls > 0) {
      levels = new Array<number>(page.rows);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const reader = { view, offset: v2.repetition_levels_byte_length };
      fns.encoding.readRleBitPackedHybrid(reader, width, levels, v2.definition_levels_byte_length);
    }
    const values = bytes.subarray(skip);
    const unpacked =
      v2.is_compressed === false
        ? values
        : fns.dataPages.decompressPage(
            values,
            Number(header.uncompressed_page_size) - skip,
            meta.codec,
            source.compressors,
          );
    const text = Buffer.from(unpacked.buffer, unpacked.byteOffset, unpacked.byteLength);
    return { text, ...(levels ? { levels } : {}) };
  }
  return undefined;
}
