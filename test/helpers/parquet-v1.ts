/**
 * Writes a Parquet file with version-1 data pages (pyarrow's and parquet-mr's default), which
 * hyparquet-writer does not write: its exported page-header, RLE, plain and footer writers put
 * together, uncompressed, one row group, no offset index. Columns are nullable (OPTIONAL).
 */
import { writeFileSync } from 'node:fs';
import type { FileMetaData, ParquetType } from 'hyparquet';
import { ByteWriter } from 'hyparquet-writer/src/bytewriter.js';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import { writeRleBitPackedHybrid } from 'hyparquet-writer/src/encoding.js';
import { writeMetadata } from 'hyparquet-writer/src/metadata.js';
import { writePlain } from 'hyparquet-writer/src/plain.js';

/** A column: its values (null: none), physical type, and whether it holds UTF-8 text. */
export interface V1Column {
  name: string;
  type: ParquetType;
  values: (number | bigint | string | null)[];
  utf8?: boolean;
}

/** Writes `columns` (of equal length) to `path` in data pages of at most `pageRows` rows. */
export function writeV1Parquet(path: string, columns: V1Column[], pageRows: number): void {
  const rows = columns[0]?.values.length ?? 0;
  const writer = new ByteWriter();
  writer.appendUint32(0x31524150); // PAR1
  const chunks = columns.map((column) => {
    const start = writer.offset;
    for (let from = 0; from < rows; from += pageRows) {
      const values = column.values.slice(from, from + pageRows);
      const page = new ByteWriter();
      // Definition levels: RLE/bit-packed with a 4-byte length, 1 = present, 0 = null.
      const levels = new ByteWriter();
      writeRleBitPackedHybrid(
        levels,
        values.map((v) => (v === null ? 0 : 1)),
        1,
      );
      page.appendUint32(levels.offset);
      page.appendBytes(levels.getBytes());
      writePlain(
        page,
        values.filter((v) => v !== null),
        column.type,
        undefined,
      );
      writePageHeader(writer, {
        type: 'DATA_PAGE',
        uncompressed_page_size: page.offset,
        compressed_page_size: page.offset,
        data_page_header: {
          num_values: values.length,
          encoding: 'PLAIN',
          definition_level_encoding: 'RLE',
          repetition_level_encoding: 'RLE',
        },
      });
      writer.appendBytes(page.getBytes());
    }
    const size = BigInt(writer.offset - start);
    return {
      file_offset: BigInt(start),
      meta_data: {
        type: column.type,
        encodings: ['PLAIN', 'RLE'],
        path_in_schema: [column.name],
        codec: 'UNCOMPRESSED',
        num_values: BigInt(rows),
        total_uncompressed_size: size,
        total_compressed_size: size,
        data_page_offset: BigInt(start),
      },
    };
  });
  const metadata = {
    version: 1,
    schema: [
      { name: 'root', num_children: columns.length },
      ...columns.map((c) => ({
        name: c.name,
        type: c.type,
        repetition_type: 'OPTIONAL',
        ...(c.utf8 ? { converted_type: 'UTF8' } : {}),
      })),
    ],
    num_rows: BigInt(rows),
    row_groups: [
      {
        columns: chunks,
        total_byte_size: chunks.reduce((sum, c) => sum + c.meta_data.total_compressed_size, 0n),
        num_rows: BigInt(rows),
      },
    ],
    metadata_length: 0,
  } as unknown as FileMetaData;
  writeMetadata(writer, metadata);
  writer.appendUint32(0x31524150); // PAR1
  writeFileSync(path, new Uint8Array(writer.getBytes()));
}
