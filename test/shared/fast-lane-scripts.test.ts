import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADOPT,
  CLAIM,
  FINISH,
  HANDOFF,
  REAP,
  ENQUEUE,
  fastLaneKeys,
  parseFastElement,
  queueGathered,
  type FastLaneKeys,
} from '../../src/shared/fast-lane.js';
import { REDIS_URL, uniquePrefix } from '../helpers/env.js';

// The fast lane's scripts one step at a time, on the shared Redis under a prefix of their own:
// what each leaves behind when a job is cancelled, swept, failed or finished (src/shared/fast-lane.ts).

describe('fast-lane scripts', () => {
  let redis: Redis;
  let k: FastLaneKeys;
  const DATA = JSON.stringify({ model: 'm', values: [1, 2, 3] });
  const OPTS = JSON.stringify({ attempts: 3 });

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });

  const used: string[] = [];

  afterAll(async () => {
    for (const prefix of used) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    redis.disconnect();
  });

  const fresh = () => {
    k = fastLaneKeys(`${uniquePrefix('lane')}:predict:`);
    used.push(k.queueKey);
  };
  const submit = (id: string) =>
    ENQUEUE.run(
      redis,
      [`${k.queueKey}${id}`, k.fast, k.meta, k.wait],
      [id, 'predict', DATA, OPTS, 1000],
    );
  // What BLMOVE does for a consumer, without blocking.
  const take = (consumer: string) => redis.lmove(k.fast, k.transit(consumer), 'RIGHT', 'LEFT');
  const leaveKeys = (id: string, consumer: string) => [
    k.lock(id),
    `${k.queueKey}${id}`,
    k.active,
    k.stalled,
    k.transit(consumer),
  ];
  const finish = (
    id: string,
    consumer: string,
    token: string,
    element: string,
    extra: { trim?: [number, number] } = {},
  ) =>
    FINISH.run(
      redis,
      [...leaveKeys(id, consumer), k.completed],
      [
        token,
        id,
        element,
        '{"results":[1]}',
        5000,
        4000,
        'w1',
        extra.trim ? extra.trim[0] : '',
        extra.trim ? extra.trim[1] : 0,
        k.queueKey,
      ],
    );

  it('queues a job as a BullMQ hash plus an element carrying its payload', async () => {
    fresh();
    expect(await submit('j1')).toEqual([1]);
    expect(await redis.hgetall(`${k.queueKey}j1`)).toMatchObject({
      name: 'predict',
      data: DATA,
      opts: OPTS,
      timestamp: '1000',
      lane: 'fast',
    });
    const [element] = await redis.lrange(k.fast, 0, -1);
    expect(parseFastElement(element ?? '')).toEqual({ id: 'j1', timestamp: 1000, data: DATA });
  });

  it('puts a job on wait, without a marker, while the queue is paused', async () => {
    fresh();
    await redis.hset(k.meta, 'paused', 1);
    await submit('p1');
    expect(await redis.llen(k.fast)).toBe(0);
    expect(await redis.lrange(k.wait, 0, -1)).toEqual(['p1']);
    expect(await redis.exists(k.marker)).toBe(0);
  });

  // A gathered job as the API queues it: `requests` are [cache key, claim key, values, part].
  type Request = [string, string, number[], object];
  const gather = async (id: string, requests: Request[]) => {
    const data = {
      model: 'm',
      rows: requests.length,
      values: requests.flatMap((r) => r[2]),
      parts: requests.map((r) => r[3]),
    };
    return queueGathered(redis, {
      lane: k,
      id,
      name: 'predict',
      data: JSON.stringify(data),
      opts: OPTS,
      timestamp: 1000,
      claims: requests.map((r) => r[1]),
      entries: requests.every(([cache, claim]) => cache === claim)
        ? undefined
        : requests.map((r) => r[0]),
      claimMs: 30_000,
    });
  };

  it('queues a lone request with its claim, unless it is cached or carried by another part', async () => {
    fresh();
    const cache = `${k.queueKey}cache-x`;
    const claim = `${k.queueKey}claim-x`;
    const alone = (id: string) => gather(id, [[cache, claim, [1, 2], { rows: 1 }]]);
    // What the script read once the claim was set: its own claim, so it needs the job.
    expect(await alone('l1')).toEqual({ read: [{ entry: '', claim: 'l1-p0' }], queued: true });
    expect(await redis.get(claim)).toBe('l1-p0');
    expect(await redis.pttl(claim)).toBeGreaterThan(20_000);
    expect(await alone('l2')).toEqual({ read: [{ entry: '', claim: 'l1-p0' }], queued: false });
    await redis.set(cache, '{"cached":true}');
    expect(await alone('l3')).toEqual({
      read: [{ entry: '{"cached":true}', claim: 'l1-p0' }],
      queued: false,
    });
    expect(await redis.llen(k.fast)).toBe(1);
    expect(await redis.exists(`${k.queueKey}l2`, `${k.queueKey}l3`)).toBe(0);
    expect(await redis.get(claim)).toBe('l1-p0');
    // A value that names no part is no claim: the request is queued (the value stays: NX).
    await redis.del(cache);
    for (const [id, garbage] of [
      ['l4', 'garbage'],
      ['l5', 'x-p1234567'],
      ['l6', '-p1'],
    ]) {
      await redis.set(claim, garbage!);
      expect(await alone(id!)).toEqual({ read: [{ entry: '', claim: garbage }], queued: true });
    }
    expect(await redis.llen(k.fast)).toBe(4);
  });

  it("reads claims kept in the cache entry's key, and claims only the keys holding nothing", async () => {
    fresh();
    const key = (name: string) => `${k.queueKey}${name}`;
    await redis.set(key('hit'), '{"cached":2}');
    await redis.set(key('carried'), 'other-p7');
    const { read, queued } = await gather('s1', [
      [key('new'), key('new'), [1, 2], { rows: 1, requestId: 'a' }],
      [key('hit'), key('hit'), [3, 4], { rows: 1, requestId: 'b' }],
      [key('carried'), key('carried'), [5, 6], { rows: 1, requestId: 'c' }],
    ]);
    expect(read).toEqual([
      { entry: 's1-p0', claim: 's1-p0' },
      { entry: '{"cached":2}', claim: '{"cached":2}' },
      { entry: 'other-p7', claim: 'other-p7' },
    ]);
    expect(queued).toBe(true);
    // A claim where nothing was; the entry and the other part's claim left as they were.
    expect(await redis.mget(key('new'), key('hit'), key('carried'))).toEqual([
      's1-p0',
      '{"cached":2}',
      'other-p7',
    ]);
    expect(await redis.pttl(key('new'))).toBeGreaterThan(20_000);
    expect(await redis.pttl(key('hit'))).toBe(-1);
    // Every request is a part of the job (part i is request i, as the claims say).
    const data = JSON.parse((await redis.hget(key('s1'), 'data')) ?? '{}') as {
      values?: number[];
      parts?: object[];
    };
    expect(data.values).toEqual([1, 2, 3, 4, 5, 6]);
    expect(data.parts).toHaveLength(3);
    const [element] = await redis.lrange(k.fast, 0, -1);
    expect(parseFastElement(element ?? '')).toMatchObject({ id: 's1', timestamp: 1000 });
    expect(JSON.parse(parseFastElement(element ?? '')?.data ?? '')).toEqual(data);
  });

  it('queues nothing when every request is answered without the job', async () => {
    fresh();
    const key = (name: string) => `${k.queueKey}${name}`;
    await redis.set(key('cache-a'), '{"a":1}');
    await redis.set(key('claim-b'), 'x-p0');
    expect(
      await gather('n1', [
        [key('cache-a'), key('claim-a'), [1], { rows: 1 }],
        [key('cache-b'), key('claim-b'), [2], { rows: 1 }],
      ]),
    ).toEqual({
      read: [
        { entry: '{"a":1}', claim: 'n1-p0' },
        { entry: '', claim: 'x-p0' },
      ],
      queued: false,
    });
    expect(await redis.exists(key('n1'))).toBe(0);
    expect(await redis.llen(k.fast)).toBe(0);
    // The claim set beside the first request's cached entry named a job that never was: gone.
    expect(await redis.exists(key('claim-a'))).toBe(0);
    expect(await redis.get(key('claim-b'))).toBe('x-p0');
  });

  it('records an unclaimed job completed as BullMQ does, off its transit list', async () => {
    fresh();
    await submit('f1');
    const element = (await take('c1')) ?? '';
    expect(await finish('f1', 'c1', '', element)).toBe(1);
    expect(await redis.llen(k.transit('c1'))).toBe(0);
    expect(await redis.zscore(k.completed, 'f1')).toBe('5000');
    expect(await redis.hgetall(`${k.queueKey}f1`)).toMatchObject({
      returnvalue: '{"results":[1]}',
      finishedOn: '5000',
      processedOn: '4000',
      pb: 'w1',
      ats: '1',
      atm: '1',
    });
  });

  it('claims a long job into active under a lock, and finishes it by its token only', async () => {
    fresh();
    await submit('c1');
    const element = (await take('w')) ?? '';
    const claimKeys = [k.transit('w'), `${k.queueKey}c1`, k.lock('c1'), k.active];
    expect(await CLAIM.run(redis, claimKeys, [element, 'c1', 'tok', 6000, 4000, 'w1'])).toBe(1);
    expect(await redis.lrange(k.active, 0, -1)).toEqual(['c1']);
    expect(await redis.get(k.lock('c1'))).toBe('tok');
    expect(await redis.hget(`${k.queueKey}c1`, 'ats')).toBe('1');
    expect(await finish('c1', 'w', 'other', element)).toBe(0);
    expect(await finish('c1', 'w', 'tok', element)).toBe(1);
    expect(await redis.llen(k.active)).toBe(0);
    expect(await redis.exists(k.lock('c1'))).toBe(0);
    expect(await redis.hget(`${k.queueKey}c1`, 'atm')).toBe('1');
  });

  it('records nothing for a job cancelled (removed) while it ran', async () => {
    fresh();
    await submit('x1');
    const element = (await take('w')) ?? '';
    await redis.del(`${k.queueKey}x1`);
    const claimKeys = [k.transit('w'), `${k.queueKey}x1`, k.lock('x1'), k.active];
    expect(await CLAIM.run(redis, claimKeys, [element, 'x1', 't', 6000, 4000, 'w1'])).toBe(0);
    await redis.lpush(k.transit('w'), element);
    expect(await finish('x1', 'w', '', element)).toBe(0);
    expect(await redis.exists(`${k.queueKey}x1`)).toBe(0);
    expect(await redis.zcard(k.completed)).toBe(0);
  });

  it("sweeps a dead consumer's transit list onto wait, and the dead consumer records nothing after", async () => {
    fresh();
    await submit('d1');
    const element = (await take('dead')) ?? '';
    await redis.sadd(k.consumers, 'dead', 'alive');
    await redis.set(k.alive('alive'), '1', 'PX', 10_000);
    expect(await REAP.run(redis, [k.consumers, k.wait, k.marker], [k.queueKey])).toBe(1);
    expect(await redis.lrange(k.wait, 0, -1)).toEqual(['d1']);
    expect(await redis.zscore(k.marker, '0')).toBe('0');
    expect(await redis.smembers(k.consumers)).toEqual(['alive']);
    expect(await redis.exists(k.transit('dead'))).toBe(0);
    // The "dead" one was only slow: its claim and its finish find the job gone from its list.
    const claimKeys = [k.transit('dead'), `${k.queueKey}d1`, k.lock('d1'), k.active];
    expect(await CLAIM.run(redis, claimKeys, [element, 'd1', 't', 6000, 4000, 'w1'])).toBe(-1);
    expect(await finish('d1', 'dead', '', element)).toBe(0);
    expect(await redis.hget(`${k.queueKey}d1`, 'finishedOn')).toBeNull();
  });

  it("empties a live consumer's own transit list except the jobs it still holds", async () => {
    fresh();
    await submit('s1');
    await submit('s2');
    await take('me');
    await take('me');
    await redis.set(k.alive('me'), '1', 'PX', 10_000);
    await redis.sadd(k.consumers, 'me');
    expect(await REAP.run(redis, [k.consumers, k.wait, k.marker], [k.queueKey, 'me', 's2'])).toBe(
      1,
    );
    expect(await redis.lrange(k.wait, 0, -1)).toEqual(['s1']);
    const left = await redis.lrange(k.transit('me'), 0, -1);
    expect(left.map((e) => parseFastElement(e)?.id)).toEqual(['s2']);
  });

  it('hands a failed job to BullMQ: on wait with a marker, out of transit', async () => {
    fresh();
    await submit('h1');
    const element = (await take('w')) ?? '';
    const keys = [...leaveKeys('h1', 'w'), k.wait, k.marker];
    expect(await HANDOFF.run(redis, keys, ['', 'h1', element])).toBe(1);
    expect(await redis.lrange(k.wait, 0, -1)).toEqual(['h1']);
    expect(await redis.zscore(k.marker, '0')).toBe('0');
    expect(await redis.llen(k.transit('w'))).toBe(0);
    expect(await HANDOFF.run(redis, keys, ['', 'h1', element])).toBe(0);
  });

  it('trims completed jobs past the count kept, deleting their hashes', async () => {
    fresh();
    for (const id of ['t1', 't2', 't3']) {
      await submit(id);
      const element = (await take('w')) ?? '';
      await finish(id, 'w', '', element, { trim: [0, 2] });
    }
    expect(await redis.zrange(k.completed, 0, -1)).toEqual(['t2', 't3']);
    expect(await redis.exists(`${k.queueKey}t1`)).toBe(0);
    expect(await redis.exists(`${k.queueKey}t3`)).toBe(1);
  });

  // Jobs BullMQ's add queued on `wait` (while no worker consumed the lane), as the API adds them.
  async function bullmqQueue(): Promise<Queue> {
    const queue = new Queue('predict', {
      connection: redis,
      prefix: k.queueKey.slice(0, -':predict:'.length),
    });
    await queue.waitUntilReady();
    return queue;
  }
  const adopt = (consumer: string, most: number) =>
    ADOPT.run(redis, [k.wait, k.fast, k.meta, k.transit(consumer)], [k.queueKey, most]) as Promise<
      string[]
    >;

  it('adopts the jobs BullMQ queued on wait, oldest first, as lane jobs of the worker', async () => {
    fresh();
    const queue = await bullmqQueue();
    try {
      await queue.add('predict', { n: 1 }, { jobId: 'a1', timestamp: 1111 });
      await queue.add('predict', { n: 2 }, { jobId: 'a2', timestamp: 2222 });
      const [first, ...more] = await adopt('w', 1);
      expect(more).toEqual([]);
      expect(parseFastElement(first ?? '')).toEqual({
        id: 'a1',
        timestamp: 1111,
        data: JSON.stringify({ n: 1 }),
      });
      expect(await redis.lrange(k.transit('w'), 0, -1)).toEqual([first]);
      expect(await redis.lrange(k.wait, 0, -1)).toEqual(['a2']);
      expect(await redis.hget(`${k.queueKey}a1`, 'lane')).toBe('fast');
      // The rest of its way is any lane job's: finished from the transit list.
      expect(await finish('a1', 'w', '', first ?? '')).toBe(1);
      expect(await redis.zscore(k.completed, 'a1')).toBe('5000');
      expect(await redis.llen(k.transit('w'))).toBe(0);
      // Asked for more than are left: what is there.
      expect((await adopt('w', 5)).map((e) => parseFastElement(e)?.id)).toEqual(['a2']);
      expect(await redis.llen(k.wait)).toBe(0);
      expect(await adopt('w', 5)).toEqual([]);
    } finally {
      await queue.close();
    }
  });

  it("leaves BullMQ's jobs to BullMQ: one it started, the lane's own, deduplicated; none while paused or while the lane holds jobs", async () => {
    fresh();
    const queue = await bullmqQueue();
    try {
      await queue.add('predict', { n: 1 }, { jobId: 'started' });
      await queue.add('predict', { n: 2 }, { jobId: 'next' });
      // Started once by BullMQ (a stalled job put back): stays at the head of wait, for BullMQ.
      await redis.hset(`${k.queueKey}started`, 'ats', 1);
      expect(await adopt('w', 5)).toEqual([]);
      expect(await redis.lrange(k.wait, 0, -1)).toEqual(['next', 'started']);
      // Handed back by the lane, or taken back from a dead worker: flagged, never adopted again.
      await redis.hdel(`${k.queueKey}started`, 'ats');
      await redis.hset(`${k.queueKey}started`, 'lane', 'fast');
      expect(await adopt('w', 5)).toEqual([]);
      await redis.lrem(k.wait, 0, 'started');
      await queue.add('predict', { n: 3 }, { jobId: 'dedup', deduplication: { id: 'd1' } });
      expect(await redis.hget(`${k.queueKey}dedup`, 'deid')).toBe('d1');
      await redis.lrem(k.wait, 0, 'dedup');
      await redis.rpush(k.wait, 'dedup');
      expect(await adopt('w', 5)).toEqual([]);
      await redis.lrem(k.wait, 0, 'dedup');
      // A paused queue, then jobs on the lane itself: nothing taken, `next` stays.
      await redis.hset(k.meta, 'paused', 1);
      expect(await adopt('w', 5)).toEqual([]);
      await redis.hdel(k.meta, 'paused');
      await redis.lpush(k.fast, 'x|1|{}');
      expect(await adopt('w', 5)).toEqual([]);
      expect(await redis.lrange(k.wait, 0, -1)).toEqual(['next']);
      await redis.del(k.fast);
      expect((await adopt('w', 5)).map((e) => parseFastElement(e)?.id)).toEqual(['next']);
      expect(await redis.llen(k.transit('w'))).toBe(1);
    } finally {
      await queue.close();
    }
  });
});
