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

// Exact powers of ten: a decimal of at most 15 significant digits scaled by one of these is the
// correctly rounded double (Clinger's fast path), the same value JSON.parse gives.
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const MAX_EXACT_DIGITS = 15;

/** A line the fast reader does not take: the caller parses it with JSON.parse instead. */
export const NOT_FAST = Symbol('not-fast');

/** Where a read stands in the line. */
interface Cursor {
  buf: Uint8Array;
  at: number;
  end: number;
}

function skipSpace(c: Cursor): void {
  for (; c.at < c.end; c.at++) {
    const b = c.buf[c.at];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a) return;
  }
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

/** A string without escapes or control characters; undefined for anything else. */
function readString(c: Cursor): string | undefined {
  if (!expect(c, QUOTE)) return undefined;
  const start = c.at;
  for (; c.at < c.end; c.at++) {
    const b = c.buf[c.at]!;
    if (b === QUOTE) {
      const text = Buffer.from(c.buf.buffer, c.buf.byteOffset + start, c.at - start).toString();
      c.at++;
      return text;
    }
    if (b === BACKSLASH || b < 0x20) return undefined;
  }
  return undefined;
}

/** A JSON number as JSON.parse reads it; NaN when the text is not one. One pass over its bytes. */
function readNumber(c: Cursor): number {
  skipSpace(c);
  const buf = c.buf;
  const end = c.end;
  const start = c.at;
  let at = start;
  const negative = at < end && buf[at] === MINUS;
  if (negative) at++;
  let b = at < end ? buf[at]! : -1;
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  if (b === ZERO) {
    at++;
    b = at < end ? buf[at]! : -1;
    if (b >= ZERO && b <= NINE) return NaN;
  } else if (b > ZERO && b <= NINE) {
    while (b >= ZERO && b <= NINE) {
      mantissa = mantissa * 10 + (b - ZERO);
      digits++;
      at++;
      b = at < end ? buf[at]! : -1;
    }
  } else {
    return NaN;
  }
  if (b === DOT) {
    at++;
    const fracStart = at;
    b = at < end ? buf[at]! : -1;
    while (b >= ZERO && b <= NINE) {
      if (digits > 0 || b !== ZERO) digits++;
      mantissa = mantissa * 10 + (b - ZERO);
      at++;
      b = at < end ? buf[at]! : -1;
    }
    if (at === fracStart) return NaN;
    scale = fracStart - at;
  }
  if (b === LOWER_E || b === UPPER_E) {
    at++;
    b = at < end ? buf[at]! : -1;
    const sign = b === MINUS ? -1 : 1;
    if (b === MINUS || b === PLUS) {
      at++;
      b = at < end ? buf[at]! : -1;
    }
    if (!(b >= ZERO && b <= NINE)) return NaN;
    let exponent = 0;
    while (b >= ZERO && b <= NINE) {
      if (exponent < 1e6) exponent = exponent * 10 + (b - ZERO);
      at++;
      b = at < end ? buf[at]! : -1;
    }
    scale += sign * exponent;
  }
  c.at = at;
  let value: number;
  if (digits <= MAX_EXACT_DIGITS && scale >= -22 && scale <= 22) {
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
  for (let i = 0; i < rowSize; i++) {
    if (i > 0 && !expect(c, COMMA)) return false;
    const v = readNumber(c);
    if (!(Math.abs(v) <= FLOAT32_MAX)) return false;
    target[offset + i] = v;
  }
  return expect(c, CLOSE_BRACKET);
}

/**
 * Reads one NDJSON line of the usual shape, `{"id": "...", "features": [numbers]}` (either key
 * order, id optional), straight from its bytes into `target` at `offset`, without building the
 * line's string or its objects: returns the id (undefined when none), or NOT_FAST for any line
 * it does not take (another shape, escapes, a wrong width, a bad value). Such a line goes through
 * JSON.parse and checkItem, which accept the same valid lines and name what is wrong with the
 * others; every value read here equals JSON.parse's.
 */
export function readItemFast(
  buf: Uint8Array,
  start: number,
  end: number,
  target: Float32Array,
  offset: number,
  rowSize: number,
): string | undefined | typeof NOT_FAST {
  const c: Cursor = { buf, at: start, end };
  if (!expect(c, OPEN_BRACE)) return NOT_FAST;
  let id: string | undefined;
  let features = false;
  for (let field = 0; field < 2; field++) {
    if (field > 0) {
      skipSpace(c);
      if (c.buf[c.at] === CLOSE_BRACE) break;
      if (!expect(c, COMMA)) return NOT_FAST;
    }
    skipSpace(c);
    if (!features && c.buf[c.at + 1] === 0x66 /* f */) {
      if (!expectKey(c, FEATURES_KEY) || !readFeatures(c, target, offset, rowSize)) return NOT_FAST;
      features = true;
    } else if (id === undefined && c.buf[c.at + 1] === 0x69 /* i */) {
      if (!expectKey(c, ID_KEY)) return NOT_FAST;
      id = readString(c);
      if (id === undefined || id.length > MAX_ITEM_ID_LENGTH) return NOT_FAST;
    } else {
      return NOT_FAST;
    }
  }
  if (!features || !expect(c, CLOSE_BRACE)) return NOT_FAST;
  skipSpace(c);
  return c.at === end ? id : NOT_FAST;
}
