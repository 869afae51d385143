import { describe, expect, it } from 'vitest';
import { Utf8Lines } from '../../src/shared/utf8-lines.js';

describe('Utf8Lines', () => {
  it('gives the UTF-8 bytes of the lines joined by newlines, growing past its estimate', () => {
    const lines = Array.from({ length: 1000 }, (_, i) =>
      // ASCII, two- and three-byte characters and a surrogate pair, of varying lengths.
      JSON.stringify({ index: i, id: `row-${i}-${'é'.repeat(i % 7)}-${'漢'.repeat(i % 5)}-😀` }),
    );
    const builder = new Utf8Lines(10);
    for (const line of lines) builder.push(line);
    const expected = Buffer.from(lines.map((l) => `${l}\n`).join(''));
    expect(builder.bytes().equals(expected)).toBe(true);
  });

  it('gives what was pushed so far each time, and nothing when nothing was', () => {
    const builder = new Utf8Lines(64);
    expect(builder.bytes().length).toBe(0);
    builder.push('a');
    expect(builder.bytes().toString()).toBe('a\n');
    builder.push('b');
    expect(builder.bytes().toString()).toBe('a\nb\n');
  });

  it('takes a copy of what was pushed and starts again in the same buffer', () => {
    const builder = new Utf8Lines(8);
    builder.push('first');
    const first = builder.take();
    builder.push('é2');
    const second = builder.take();
    expect(first.toString()).toBe('first\n');
    expect(second.toString()).toBe('é2\n');
    expect(builder.take().length).toBe(0);
  });
});
