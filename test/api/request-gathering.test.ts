import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatherItem, Placement } from '../../src/api/predict/request-gathering.js';
import { claimKey } from '../../src/api/predict/claims.js';
import { isCacheEntry, partId, partResult } from '../../src/shared/jobs.js';
import { uniqueRow } from '../helpers/fixtures.js';
import { createStack, type TestStack } from '../helpers/stack.js';

/**
 * Requests whose cache entry and claim are read where their job is queued (`lookup`), through
 * a real API's gatherer, a real worker and Redis: on the fast lane (claims, then ENQUEUE) and, with
 * the lane off, through one MGET before BullMQ's queue.
 */
for (const lane of [true, false]) {
  describe(`gathered lookups, fast lane ${lane ? 'on' : 'off'}`, () => {
    let stack: TestStack;

    beforeAll(async () => {
      stack = await createStack({ env: { ONLINE_FAST_LANE: String(lane) } });
      const { gather } = stack.api.deps;
      // The API learns within a second that a worker consumes the lane.
      const deadline = Date.now() + 10_000;
      while (lane && !gather.canLookUp({ hash: 'x' }) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(gather.canLookUp({ hash: 'x' })).toBe(lane);
    });
    afterAll(() => stack.close());

    function item(seed: number, waitMs = 10_000): GatherItem {
      const { repository, keys, config } = stack.api.deps;
      const model = repository.resolve('breast-cancer');
      const hash = randomBytes(16).toString('hex');
      return {
        data: {
          model: model.name,
          version: model.version,
          rows: 1,
          values: uniqueRow(seed),
          format: 'task',
        },
        single: true,
        owner: 'anon',
        hash,
        cacheKey: keys.cache('anon', hash),
        claimKey: claimKey(config, keys, 'anon', hash, keys.cache('anon', hash)),
        waitMs,
        lookup: true,
      };
    }

    // A per-owner cache (the default): the claim is kept under the cache entry's own key.
    const inflight = (it: GatherItem) => it.claimKey;

    it('answers hits from the cache, follows claimed inputs, and queues only the rest', async () => {
      const { gather, redis } = stack.api.deps;
      const [hit, carried, fresh1, fresh2] = [
        item(71_001),
        item(71_002, 0),
        item(71_003),
        item(71_004),
      ];
      await redis.set(hit.cacheKey!, JSON.stringify({ results: ['cached'] }));
      await redis.set(inflight(carried), 'jelsewhere000000000000000-p4');
      const placed: Placement[] = await Promise.all(
        [fresh1, hit, carried, fresh2].map((i) => gather.place(i)),
      );
      const [p1, pHit, pCarried, p2] = placed as [Placement, Placement, Placement, Placement];
      expect(pHit.hit).toBe(JSON.stringify({ results: ['cached'] }));
      expect(pCarried).toMatchObject({
        jobId: 'jelsewhere000000000000000',
        index: 4,
        coalesced: true,
      });
      for (const [p, it] of [
        [p1, fresh1],
        [p2, fresh2],
      ] as const) {
        expect(p.hit).toBeUndefined();
        expect(p.coalesced).toBe(false);
        // The input is claimed by the part that carries it, and its result comes back.
        // (Where the claim shares the cache entry's key, the worker's entry may be there already:
        // it names the same part.)
        const claimed = await redis.get(inflight(it));
        const named = isCacheEntry(claimed)
          ? (JSON.parse(claimed) as { jobId?: string }).jobId
          : claimed;
        expect(named).toBe(`${p.jobId}-p${p.index}`);
        const outcome = await p.wait!.promise;
        expect(outcome?.state).toBe('completed');
        if (outcome?.state !== 'completed') return;
        const part = partResult(outcome.result, p.index);
        expect(part && 'results' in part ? part.results : []).toHaveLength(1);
        // The worker wrote the request's own cache entry (in place of the claim).
        expect(isCacheEntry(await redis.get(it.cacheKey!))).toBe(true);
      }
    });

    it('answers a twin of a request found in the cache with the same entry', async () => {
      const { gather, redis } = stack.api.deps;
      const first = item(73_001);
      // The same input and owner, already read by its request (nothing was there then).
      const twin: GatherItem = { ...first, lookup: false, claim: null };
      await redis.set(first.cacheKey!, JSON.stringify({ results: ['twin'] }));
      const [a, b] = await Promise.all([gather.place(first), gather.place(twin)]);
      expect(a.hit).toBe(JSON.stringify({ results: ['twin'] }));
      expect(b.hit).toBe(a.hit);
    });

    it('tells a claim from an entry in the key they share, for a request read beforehand', async () => {
      const { gather, redis } = stack.api.deps;
      const [ran, cached] = [item(74_001), item(74_002)];
      expect(ran.claimKey).toBe(ran.cacheKey);
      const first = await gather.place(ran);
      expect((await first.wait!.promise)?.state).toBe('completed');
      // Another replica's claim on the same input names that (finished) part.
      await redis.set(ran.claimKey, partId(first.jobId, first.index), 'PX', 10_000);
      // Not read yet (claim unknown): place() reads the claim's key itself, and follows it.
      const twin = await gather.place({ ...ran, lookup: false, claim: undefined });
      expect(twin).toMatchObject({ jobId: first.jobId, index: first.index, coalesced: true });
      expect((await twin.wait!.promise)?.state).toBe('completed');
      // An entry in that key is a hit.
      await redis.set(cached.cacheKey!, JSON.stringify({ results: ['c'] }));
      const found = await gather.place({ ...cached, lookup: false, claim: undefined });
      expect(found.hit).toBe(JSON.stringify({ results: ['c'] }));
    });

    it('queues no job when every request is answered without one', async () => {
      const { gather, redis, queue } = stack.api.deps;
      const [a, b] = [item(72_001), item(72_002)];
      await redis.set(a.cacheKey!, JSON.stringify({ results: ['a'] }));
      await redis.set(b.cacheKey!, JSON.stringify({ results: ['b'] }));
      const before = await queue.getJobCounts('completed', 'waiting', 'active');
      const placed = await Promise.all([a, b].map((i) => gather.place(i)));
      expect(placed.map((p) => p.hit)).toEqual([
        JSON.stringify({ results: ['a'] }),
        JSON.stringify({ results: ['b'] }),
      ]);
      expect(await queue.getJobCounts('completed', 'waiting', 'active')).toEqual(before);
    });
  });
}
