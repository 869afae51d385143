/** Lines appended to one string before it is encoded: small enough to flatten cheaply. */
const LINES_PER_WRITE = 32;

/**
 * Builds the UTF-8 bytes of many short lines (a chunk's NDJSON result lines). Joining thousands
 * of template strings and encoding the result once makes V8 flatten a rope of thousands of
 * pieces, which cost 6x more than the lines themselves (2.9 ms against 0.47 ms for 2,000 result
 * lines here); encoding groups of a few lines straight into one growing buffer does not.
 */
export class Utf8Lines {
  private buf: Buffer;
  private used = 0;
  private pending = '';
  private pendingLines = 0;

  /** `estimate`: expected bytes in all; the buffer grows past it when needed. */
  constructor(estimate: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, estimate));
  }

  /** Appends `line` and a newline. */
  push(line: string): void {
    this.pending += `${line}\n`;
    if (++this.pendingLines === LINES_PER_WRITE) this.write();
  }

  /** The bytes of every line pushed so far (a view of the builder's buffer). */
  bytes(): Buffer {
    this.write();
    return this.buf.subarray(0, this.used);
  }

  /**
   * A copy of the bytes pushed so far, exactly their size, and the builder emptied: one builder
   * then encodes block after block into the same buffer, each block handed on as its own copy.
   */
  take(): Buffer {
    const bytes = Buffer.from(this.bytes());
    this.used = 0;
    return bytes;
  }

  private write(): void {
    if (this.pending.length === 0) return;
    // At most 3 bytes of UTF-8 per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units).
    const needed = this.used + this.pending.length * 3;
    if (needed > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.buf.length * 2));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    this.used += this.buf.write(this.pending, this.used, 'utf8');
    this.pending = '';
    this.pendingLines = 0;
  }
}
