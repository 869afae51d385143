/** The README's breast-cancer row: the cache-hit input. */
export const HIT_ROW = [
  17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589,
  153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622,
  0.6656, 0.7119, 0.2654, 0.4601, 0.1189,
];

// Integers below 2^24 are exact in float32, so two of them make 10^14 inputs that stay distinct
// after the float32 conversion the cache key hashes (NOTES.md: varying the 8th digit does not).
const SPAN = 10_000_000;

/**
 * A row of `width` features unique to `k` in float32: the hit row (or a fixed pattern for other
 * widths) with two integer-valued features set from `k` (breast-cancer: area mean and worst).
 */
export function uniqueRow(k: number, width: number): number[] {
  const row =
    width === HIT_ROW.length ? [...HIT_ROW] : Array.from({ length: width }, (_, i) => (i * 7) % 17);
  const [a, b] = width >= 24 ? [3, 23] : [0, Math.min(1, width - 1)];
  row[a] = k % SPAN;
  if (b !== a) row[b] = Math.floor(k / SPAN) % SPAN;
  return row;
}

/** Hands out disjoint ranges of row numbers, so no two scenarios of one run share an input. */
export class RowNumbers {
  private next: number;

  constructor(start = 1) {
    this.next = start;
  }

  /** Reserves `count` row numbers and returns the first. */
  take(count = 5_000_000): number {
    const first = this.next;
    this.next += count;
    return first;
  }
}
