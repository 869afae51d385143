/** Rows of a batch this worker looks up in full before the hit rate may narrow the lookups. */
export const FULL_LOOKUP_ROWS = 4_000;
/** Rows at the head of each chunk still looked up once a batch's lookups are narrowed. */
export const SAMPLE_ROWS = 64;
/** Below this share of hits, a batch's further chunks look up their sample first. */
export const MIN_HIT_SHARE = 0.01;
/** Batches remembered at once (the oldest is forgotten first). */
const REMEMBERED = 256;

interface Tally {
  looked: number;
  hits: number;
}

/**
 * How much of a batch chunk to look up in the result cache. Every row costs a SHA-256, a key and
 * its share of an MGET (a sixth of the worker's time on a 1M-row batch in the issue-14 profile)
 * whether it hits or not. A batch whose rows have not hit (fewer than 1 in 100 of its first
 * 4,000 here) looks up only the first 64 rows of each further chunk, and the rest only when one
 * of those hit. The cache only saves work: a row not looked up is inferred, with the same result.
 */
export class CacheSampling {
  private readonly tallies = new Map<string, Tally>();

  /** Rows from the head of a chunk of `rows` of batch `batchId` to look up first. */
  firstLookup(batchId: string, rows: number): number {
    const t = this.tallies.get(batchId);
    if (!t || t.looked < FULL_LOOKUP_ROWS || t.hits >= t.looked * MIN_HIT_SHARE) return rows;
    return Math.min(rows, SAMPLE_ROWS);
  }

  /** Notes that `looked` rows of batch `batchId` were looked up and `hits` of them hit. */
  record(batchId: string, looked: number, hits: number): void {
    const t = this.tallies.get(batchId) ?? { looked: 0, hits: 0 };
    this.tallies.delete(batchId);
    this.tallies.set(batchId, { looked: t.looked + looked, hits: t.hits + hits });
    if (this.tallies.size > REMEMBERED) {
      const oldest = this.tallies.keys().next().value;
      if (oldest !== undefined) this.tallies.delete(oldest);
    }
  }
}
