import { describe, expect, it } from 'vitest';
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
});
