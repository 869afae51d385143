import { describe, expect, it } from 'vitest';
import { readItemFast, type IdSpan } from '../../src/api/batches/ndjson-item.js';
import { checkItem } from '../../src/shared/batches.js';

// The fast NDJSON line reader must agree with JSON.parse + checkItem on every line it takes, to
// the bit of every float32, and leave every other line to them.

const WIDTH = 4;

/** What the full parser makes of a line: values and id, or undefined when it refuses it. */
function slow(line: string): { values: Float32Array; id?: string } | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  const values = new Float32Array(WIDTH);
  const checked = checkItem(raw, WIDTH, values, 0);
  if (!checked.ok) return undefined;
  return checked.id === undefined ? { values } : { values, id: checked.id };
}

/** What the fast reader refused. */
const NOT_FAST = Symbol('not-fast');

function fast(line: string): { values: Float32Array; id?: string } | typeof NOT_FAST {
  const bytes = Buffer.from(`xx${line}yy`);
  const values = new Float32Array(WIDTH + 2);
  const span: IdSpan = { start: 0, end: 0 };
  if (!readItemFast(bytes, 2, bytes.length - 2, values, 1, WIDTH, span)) return NOT_FAST;
  const row = values.slice(1, 1 + WIDTH);
  if (span.start < 0) return { values: row };
  // The span is the id's JSON text, as JSON.stringify writes the string JSON.parse reads from it.
  const text = bytes.toString('utf8', span.start, span.end);
  const id = JSON.parse(text) as string;
  expect(JSON.stringify(id)).toBe(text);
  return { values: row, id };
}

function expectAgreement(line: string): 'fast' | 'slow' {
  const f = fast(line);
  const s = slow(line);
  if (f === NOT_FAST) return 'slow';
  expect(s, `the fast reader took a line JSON.parse refuses: ${line}`).toBeDefined();
  expect(f.id).toBe(s!.id);
  expect(Buffer.from(f.values.buffer)).toEqual(Buffer.from(s!.values.buffer));
  return 'fast';
}

// A seeded generator: the same numbers on every run.
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function numberText(r: () => number): string {
  const v = (r() - 0.5) * 10 ** Math.floor(r() * 60 - 30);
  switch (Math.floor(r() * 6)) {
    case 0:
      return String(v);
    case 1:
      return v.toPrecision(1 + Math.floor(r() * 20));
    case 2:
      return v.toExponential(Math.floor(r() * 18)).replace('e+', r() < 0.5 ? 'E' : 'e+');
    case 3:
      return String(Math.round(v));
    case 4:
      return v.toFixed(Math.floor(r() * 12));
    default:
      return `${Math.floor(r() * 1000)}.${'0'.repeat(Math.floor(r() * 4))}${Math.floor(r() * 1000)}`;
  }
}

describe('readItemFast', () => {
  it('agrees bit for bit with JSON.parse + checkItem on 20,000 generated lines', () => {
    const r = random(14);
    let taken = 0;
    for (let i = 0; i < 20_000; i++) {
      const features = Array.from({ length: WIDTH }, () => numberText(r));
      const sp = () => [' ', '', '\t', ''][Math.floor(r() * 4)]!;
      const list = `[${sp()}${features.join(`${sp()},${sp()}`)}${sp()}]`;
      const id = r() < 0.5 ? undefined : `"row-${i}"`;
      const fields = [`"features"${sp()}:${sp()}${list}`];
      if (id) fields[r() < 0.5 ? 'push' : 'unshift'](`"id":${sp()}${id}`);
      const line = `${sp()}{${sp()}${fields.join(`${sp()},${sp()}`)}${sp()}}${sp()}`;
      if (expectAgreement(line) === 'fast') taken++;
    }
    // The fast reader takes nearly every well-formed line (it leaves e.g. "1." or "-.5" aside).
    expect(taken).toBeGreaterThan(15_000);
  });

  it('takes the usual shapes, negative zero and integers beyond 15 digits included', () => {
    for (const line of [
      '{"id":"a","features":[1,2,3,4]}',
      '{"features":[1.5,-2.25e-3,3E2,-0]}',
      '{"features":[0.1,0.2,0.30000000000000004,12345678901234567890]}',
      '{ "features" : [ 1 , 2 , 3 , 4 ] , "id" : "é ü 日本" }\r',
      '{"features":[1e-45,3.4028234663852886e38,-1e-7,123456789012345]}',
      // Mantissas about 2^53, where the exact path ends.
      '{"features":[9007199254740991,9007199254740993,0.9007199254740993,900719925474099.3]}',
      '{"features":[4503599627370497.5,9007199254740992e-22,1.0000000000000002,-8.5e22]}',
    ]) {
      expect(expectAgreement(line), line).toBe('fast');
    }
    const negativeZero = fast('{"features":[-0,0,0,0]}');
    expect(negativeZero !== NOT_FAST && Object.is(negativeZero.values[0], -0)).toBe(true);
  });

  it('reads nothing past the end of the line it is given', () => {
    // What follows the line's end would complete it: the line alone is cut short.
    const bytes = Buffer.from('{"features":[1,2,3,4]}');
    const span: IdSpan = { start: 0, end: 0 };
    for (const end of [13, 14, 15, 19, 20, 21]) {
      const taken = readItemFast(bytes, 0, end, new Float32Array(WIDTH), 0, WIDTH, span);
      expect(taken, bytes.toString('utf8', 0, end)).toBe(false);
    }
    expect(readItemFast(bytes, 0, bytes.length, new Float32Array(WIDTH), 0, WIDTH, span)).toBe(
      true,
    );
  });

  it('leaves every other line to the full parser', () => {
    for (const line of [
      '{"features":[1,2,3]}', // too few
      '{"features":[1,2,3,4,5]}', // too many
      '{"features":[1,2,3,"4"]}',
      '{"features":[1,2,3,1e39]}', // over float32
      '{"features":[1,2,3,01]}',
      '{"features":[1,2,3,4],}',
      '{"features":[1,2,3,4],"extra":true}',
      '{"features":[1,2,3,4],"features":[1,2,3,4]}',
      '{"id":"a\\"b","features":[1,2,3,4]}', // escapes
      '{"id":5,"features":[1,2,3,4]}',
      `{"id":"${'x'.repeat(257)}","features":[1,2,3,4]}`,
      '\uFEFF{"features":[1,2,3,4]}',
      '{"features":[1,2,3,4]} x',
      '[1,2,3,4]',
      '{"features":[1,2,3,4]',
      '',
      '   ',
    ]) {
      expect(fast(line), line).toBe(NOT_FAST);
    }
  });
});
