import { describe, expect, it } from 'vitest';
import { ChunkStager, stageNdjson } from '../../src/api/batches/batch-upload.js';
import { cancelledLines, decodeChunk, encodeChunk } from '../../src/shared/batches.js';

const values = (rows: number) => Float32Array.from({ length: rows * 3 }, (_, i) => i / 3);

describe('staged chunks', () => {
  it('carry each id as its JSON text, whatever it holds', () => {
    const ids = ['plain', 'quote " and \\ back', 'line\nbreak', 'é漢😀', null, ''];
    const decoded = decodeChunk(encodeChunk({ rows: 6, rowSize: 3, ids, values: values(6) }));
    expect(decoded.idTexts).toEqual(ids.map((id) => (id === null ? '' : JSON.stringify(id))));
    expect(decoded.idTexts.map((t) => (t ? (JSON.parse(t) as string) : null))).toEqual(ids);
    expect([...decoded.values]).toEqual([...values(6)]);
  });

  it('carry no ids when no item had one, and the values bit for bit at any offset', () => {
    const encoded = encodeChunk({ rows: 4, rowSize: 3, ids: [], values: values(4) });
    const decoded = decodeChunk(encoded);
    expect(decoded).toMatchObject({ rows: 4, rowSize: 3, idTexts: [] });
    // The same bytes at an odd offset of a larger buffer (as a pooled Buffer may be): copied.
    const shifted = Buffer.alloc(encoded.length + 1);
    encoded.copy(shifted, 1);
    expect([...decodeChunk(shifted.subarray(1)).values]).toEqual([...values(4)]);
  });

  it('still read chunks staged with the ids in the header', () => {
    const header = Buffer.from(JSON.stringify({ rows: 2, rowSize: 3, ids: ['a', null] }));
    const offset = Math.ceil((4 + header.length) / 4) * 4;
    const buf = Buffer.alloc(offset + 24);
    buf.writeUInt32LE(header.length, 0);
    header.copy(buf, 4);
    Buffer.from(values(2).buffer).copy(buf, offset);
    const decoded = decodeChunk(buf);
    expect(decoded.idTexts).toEqual(['"a"', '']);
    expect([...decoded.values]).toEqual([...values(2)]);
  });

  it('write cancelled lines with the ids as staged', () => {
    const lines = cancelledLines(10, 2, ['"a\\"b"', '']).trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { index: 10, id: 'a"b', status: 'cancelled' },
      { index: 11, status: 'cancelled' },
    ]);
  });

  it("hold an upload's ids as their JSON texts, read fast or through JSON.parse alike", async () => {
    const ids = [
      'r1', // read straight from the bytes
      undefined,
      'quote " inside', // escaped: JSON.parse
      'é'.repeat(200), // 400 bytes but 200 characters: JSON.parse, accepted
      'x'.repeat(256),
      '日本',
    ];
    const lines = ids.map((id, i) => {
      const features = `[${i},${i + 0.5},${-i}]`;
      return id === undefined
        ? `{"features":${features}}`
        : `{"id":${JSON.stringify(id)},"features":${features}}`;
    });
    const staged: Buffer[] = [];
    const stager = new ChunkStager({
      batchId: 'b',
      rowSize: 3,
      chunkRows: 4,
      sink: {
        stage: (_chunk, buf) => Promise.resolve(void staged.push(buf)),
        seal: () => Promise.resolve(),
        reject: () => Promise.resolve(),
      },
    });
    // In two network chunks, cut inside a line.
    const bytes = Buffer.from(lines.join('\n') + '\n');
    const body = ReadableStream.from([bytes.subarray(0, 100), bytes.subarray(100)]);
    await stageNdjson(body, stager, { maxLineBytes: 4096, maxRows: 100, maxBytes: 1 << 20 });
    const chunks = staged.map(decodeChunk);
    expect(chunks.map((c) => c.rows)).toEqual([4, 2]);
    const texts = chunks.flatMap((c) => c.idTexts);
    expect(texts).toEqual(ids.map((id) => (id === undefined ? '' : JSON.stringify(id))));
    expect([...(chunks[1]?.values ?? [])]).toEqual([4, 4.5, -4, 5, 5.5, -5]);
  });
});
