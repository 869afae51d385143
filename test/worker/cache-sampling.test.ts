import { describe, expect, it } from 'vitest';
import {
  CacheSampling,
  FULL_LOOKUP_ROWS,
  MIN_HIT_SHARE,
  SAMPLE_ROWS,
} from '../../src/worker/chunks/cache-sampling.js';

describe('CacheSampling', () => {
  it('looks up whole chunks until a batch has looked up FULL_LOOKUP_ROWS rows', () => {
    const s = new CacheSampling();
    expect(s.firstLookup('a', 2000)).toBe(2000);
    s.record('a', 2000, 0);
    expect(s.firstLookup('a', 2000)).toBe(2000);
    s.record('a', FULL_LOOKUP_ROWS - 2000, 0);
    expect(s.firstLookup('a', 2000)).toBe(SAMPLE_ROWS);
    // A chunk smaller than the sample is looked up whole.
    expect(s.firstLookup('a', 10)).toBe(10);
    // Other batches keep their own tally.
    expect(s.firstLookup('b', 2000)).toBe(2000);
  });

  it('goes back to whole chunks once the share of hits reaches MIN_HIT_SHARE', () => {
    const s = new CacheSampling();
    s.record('a', FULL_LOOKUP_ROWS, 0);
    expect(s.firstLookup('a', 2000)).toBe(SAMPLE_ROWS);
    s.record('a', 2000, Math.ceil((FULL_LOOKUP_ROWS + 2000) * MIN_HIT_SHARE));
    expect(s.firstLookup('a', 2000)).toBe(2000);
  });

  it('forgets the batch it heard of least recently when it holds too many', () => {
    const s = new CacheSampling();
    s.record('old', FULL_LOOKUP_ROWS, 0);
    for (let i = 0; i < 300; i++) s.record(`b${i}`, 1, 0);
    expect(s.firstLookup('old', 2000)).toBe(2000);
  });
});
