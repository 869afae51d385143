import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { newJobId, PublicIds } from '../../src/api/jobs/public-ids.js';

// The id a cache hit answers with is remembered per owner and entry (encodeEntry, from the part
// id alone): it must be the very id encode gives, decode back under its owner only, and never
// leak across owners.

describe('public ids of cache entries', () => {
  const ids = new PublicIds(randomBytes(32));

  it('names an entry as encode does, the same id again on the next hit', () => {
    const jobId = newJobId(0);
    const ref = { jobId, part: 3 };
    const first = ids.encodeEntry('owner-a', `${jobId}-p3`);
    expect(first).toBe(ids.encode('owner-a', ref));
    expect(ids.encodeEntry('owner-a', `${jobId}-p3`)).toBe(first);
    expect(ids.decode('owner-a', first)).toEqual(ref);
  });

  it('gives another owner another id, which the first owner cannot read', () => {
    const jobId = newJobId(0);
    const ref = { jobId };
    const a = ids.encodeEntry('owner-a', jobId);
    const b = ids.encodeEntry('owner-b', jobId);
    expect(b).not.toBe(a);
    expect(ids.decode('owner-a', b)).toBeUndefined();
    expect(ids.decode('owner-b', b)).toEqual(ref);
  });

  it('keeps naming entries correctly once its memory was emptied', () => {
    const refs = Array.from({ length: 5000 }, () => ({ jobId: newJobId(0) }));
    const named = refs.map((ref) => ids.encodeEntry('owner-c', ref.jobId));
    refs.forEach((ref, i) => expect(ids.decode('owner-c', named[i] ?? '')).toEqual(ref));
    expect(ids.encodeEntry('owner-c', refs[0]!.jobId)).toBe(named[0]);
  });
});
