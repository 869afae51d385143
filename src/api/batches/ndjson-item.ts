import { MAX_ITEM_ID_LENGTH } from '../../shared/batches.js';
import { FLOAT32_MAX } from '../../shared/public-types.js';

// Bytes of the JSON grammar this reader knows.
const QUOTE = 0x22;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const BACKSLASH = 0x5c;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

const ID_KEY = Buffer.from('"id"');
const FEATURES_KEY = Buffer.from('"features"');

// Exact powers of ten: an integer below 2^53 scaled by one of these is the correctly rounded
// double (Clinger's fast path), the same value JSON.parse gives.
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
// Below it, every step of gathering the digits into the mantissa was exact.
const MAX_EXACT_MANTISSA = 2 ** 53;

/** Where a read stands in the line. */
interface Cursor {
  buf: Uint8Array;
  at: number;
  end: number;
}

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0a;
}

function skipSpace(c: Cursor): void {
  while (c.at < c.end && isSpace(c.buf[c.at])) c.at++;
}

function expect(c: Cursor, byte: number): boolean {
  skipSpace(c);
  if (c.buf[c.at] !== byte) return false;
  c.at++;
  return true;
}

function expectKey(c: Cursor, key: Buffer): boolean {
  skipSpace(c);
  if (c.end - c.at < key.length) return false;
  for (let i = 0; i < key.length; i++) if (c.buf[c.at + i] !== key[i]) return false;
  c.at += key.length;
  return expect(c, COLON);
}

/**
 * Where a line's id stands: bytes [start, end) of its JSON string, quotes included (the id's JSON
 * text as JSON.stringify writes it, for the strings readItemFast takes); start < 0 when none.
 */
export interface IdSpan {
  start: number;
  end: number;
}

/**
 * A string of at most MAX_ITEM_ID_LENGTH bytes without escapes or control characters, its span
 * noted in `id`; false for anything else (JSON.parse then reads it, and counts its characters).
 */
function readIdText(c: Cursor, id: IdSpan): boolean {
  if (!expect(c, QUOTE)) return false;
  const start = c.at - 1;
  const last = Math.min(c.end, c.at + MAX_ITEM_ID_LENGTH + 1);
  for (; c.at < last; c.at++) {
    const b = c.buf[c.at]!;
    if (b === QUOTE) {
      c.at++;
      id.start = start;
      id.end = c.at;
      return true;
    }
    if (b === BACKSLASH || b < 0x20) return false;
  }
  return false;
}

/**
 * A JSON number as JSON.parse reads it; NaN when the text is not one. One pass over its bytes,
 * the digits gathered into an integer mantissa.
 */
function readNumber(c: Cursor): number {
  const buf = c.buf;
  const end = c.end;
  const start = c.at;
  let at = start;
  let b = at < end ? buf[at]! : -1;
  const negative = b === MINUS;
  if (negative) b = ++at < end ? buf[at]! : -1;
  let mantissa = 0;
  let scale = 0;
  if (b === ZERO) {
    b = ++at < end ? buf[at]! : -1;
    if (b >= ZERO && b <= NINE) return NaN;
  } else if (b > ZERO && b <= NINE) {
    do {
      mantissa = mantissa * 10 + (b - ZERO);
      b = ++at < end ? buf[at]! : -1;
    } while (b >= ZERO && b <= NINE);
  } else {
    return NaN;
  }
  if (b === DOT) {
    const fracStart = ++at;
    b = at < end ? buf[at]! : -1;
    while (b >= ZERO && b <= NINE) {
      mantissa = mantissa * 10 + (b - ZERO);
      b = ++at < end ? buf[at]! : -1;
    }
    if (at === fracStart) return NaN;
    scale = fracStart - at;
  }
  if (b === LOWER_E || b === UPPER_E) {
    b = ++at < end ? buf[at]! : -1;
    const sign = b === MINUS ? -1 : 1;
    if (b === MINUS || b === PLUS) b = ++at < end ? buf[at]! : -1;
    if (!(b >= ZERO && b <= NINE)) return NaN;
    let exponent = 0;
    do {
      if (exponent < 1e6) exponent = exponent * 10 + (b - ZERO);
      b = ++at < end ? buf[at]! : -1;
    } while (b >= ZERO && b <= NINE);
    scale += sign * exponent;
  }
  c.at = at;
  let value: number;
  // Clinger's fast path: an exact integer mantissa scaled by an exact power of ten rounds once.
  if (mantissa < MAX_EXACT_MANTISSA && scale >= -22 && scale <= 22) {
    value = scale >= 0 ? mantissa * POW10[scale]! : mantissa / POW10[-scale]!;
  } else {
    // Long or far-scaled numbers: V8's own conversion of the same text.
    const text = Buffer.from(buf.buffer, buf.byteOffset + start, at - start).toString('latin1');
    value = Math.abs(Number(text));
  }
  return negative ? -value : value;
}

/** Reads `[n, ...]` of exactly `rowSize` numbers into `target`; false for anything else. */
function readFeatures(c: Cursor, target: Float32Array, offset: number, rowSize: number): boolean {
  if (!expect(c, OPEN_BRACKET)) return false;
  const buf = c.buf;
  for (let i = 0; i < rowSize; i++) {
    // The usual compact text needs no whitespace skipping: one byte looked at per separator.
    if (i > 0) {
      if (c.at < c.end && buf[c.at] === COMMA) c.at++;
      else if (!expect(c, COMMA)) return false;
    }
    if (isSpace(buf[c.at])) skipSpace(c);
    const v = readNumber(c);
    if (!(v <= FLOAT32_MAX && v >= -FLOAT32_MAX)) return false;
    target[offset + i] = v;
  }
  return expect(c, CLOSE_BRACKET);
}

/**
 * Reads one NDJSON line of the usual shape, `{"id": "...", "features": [numbers]}` (either key
 * order, id optional), straight from its bytes into `target` at `offset`, without building the
 * line's string or its objects; the id's span goes to `id` (its text is never decoded here).
 * False for any line it does not take (another shape, escapes, a wrong width, a bad value, an id
 * over MAX_ITEM_ID_LENGTH bytes): such a line goes through JSON.parse and checkItem, which accept
 * the same valid lines and name what is wrong with the others; every value read here equals
 * JSON.parse's.
 */
export function readItemFast(
  buf: Uint8Array,
  start: number,
  end: number,
  target: Float32Array,
  offset: number,
  rowSize: number,
  id: IdSpan,
): boolean {
  const c: Cursor = { buf, at: start, end };
  id.start = -1;
  if (!expect(c, OPEN_BRACE)) return false;
  let features = false;
  for (let field = 0; field < 2; field++) {
    if (field > 0) {
      skipSpace(c);
      if (c.buf[c.at] === CLOSE_BRACE) break;
      if (!expect(c, COMMA)) return false;
    }
    skipSpace(c);
    if (!features && c.buf[c.at + 1] === 0x66 /* f */) {
      if (!expectKey(c, FEATURES_KEY) || !readFeatures(c, target, offset, rowSize)) return false;
      features = true;
    } else if (id.start < 0 && c.buf[c.at + 1] === 0x69 /* i */) {
      if (!expectKey(c, ID_KEY) || !readIdText(c, id)) return false;
    } else {
      return false;
    }
  }
  if (!features || !expect(c, CLOSE_BRACE)) return false;
  skipSpace(c);
  return c.at === end;
}
