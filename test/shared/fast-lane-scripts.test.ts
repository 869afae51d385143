import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLAIM,
  FINISH,
  HANDOFF,
  GATHER,
  REAP,
  SUBMIT,
  fastLaneKeys,
  parseFastElement,
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
  const submit = (id: string, claims: [string, string][] = []) =>
    SUBMIT.run(
      redis,
      [`${k.queueKey}${id}`, k.fast, k.meta, k.wait, ...claims.map((c) => c[0])],
      [id, 'predict', DATA, OPTS, 1000, 30_000, ...claims.map((c) => c[1])],
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

  it('queues a job as a BullMQ hash plus an element carrying its payload, with its claims', async () => {
    fresh();
    const claim = `${k.queueKey}claim-a`;
    expect(await submit('j1', [[claim, 'j1:0']])).toBe(1);
    expect(await submit('j1')).toBe(0);
    expect(await redis.hgetall(`${k.queueKey}j1`)).toMatchObject({
      name: 'predict',
      data: DATA,
      opts: OPTS,
      timestamp: '1000',
      lane: 'fast',
    });
    expect(await redis.get(claim)).toBe('j1:0');
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

  // GATHER's requests: [look, cache key, claim key, rows, values, part].
  type Gathered = [boolean, string, string, number, number[], object];
  const gather = (id: string, requests: Gathered[]) =>
    GATHER.run(
      redis,
      [
        `${k.queueKey}${id}`,
        k.fast,
        k.meta,
        k.wait,
        ...requests.flatMap(([look, cache, claim]) => [look ? cache : claim, claim]),
      ],
      [
        id,
        'predict',
        '{"model":"m","version":"1.0.0","format":"task","replyTo":"r1","single":false,',
        OPTS,
        1000,
        30_000,
        requests.length,
        ...requests.flatMap(([look, , , rows, values, part]) => [
          look ? '1' : '0',
          rows,
          values.join(','),
          JSON.stringify(part),
        ]),
      ],
    );

  it('answers a lone lookup from the cache, from a claim, or queues it', async () => {
    fresh();
    const cache = `${k.queueKey}cache-x`;
    const claim = `${k.queueKey}claim-x`;
    const alone = (id: string) => gather(id, [[true, cache, claim, 1, [1, 2], { rows: 1 }]]);
    expect(await alone('l1')).toEqual([0, 0]);
    expect(await redis.get(claim)).toBe('l1-p0');
    expect(await alone('l2')).toEqual([2, 'l1-p0']);
    await redis.set(cache, '{"cached":true}');
    expect(await alone('l3')).toEqual([1, '{"cached":true}']);
    expect(await redis.llen(k.fast)).toBe(1);
    expect(await redis.exists(`${k.queueKey}l2`, `${k.queueKey}l3`)).toBe(0);
    // A claim that names no part is no claim: the request is queued and claims its input.
    await redis.del(cache);
    for (const [id, garbage] of [
      ['l4', 'garbage'],
      ['l5', 'x-p1234567'],
      ['l6', '-p1'],
    ]) {
      await redis.set(claim, garbage!);
      expect(await alone(id!)).toEqual([0, 0]);
      expect(await redis.get(claim)).toBe(`${id}-p0`);
    }
  });

  it('queues only the gathered requests that need the job, renumbering their parts', async () => {
    fresh();
    const key = (name: string) => `${k.queueKey}${name}`;
    await redis.set(key('cache-hit'), '{"cached":1}');
    await redis.set(key('claim-carried'), 'other-p3');
    // A request read before (look '0') keeps an existing claim (NX) but is queued all the same.
    await redis.set(key('claim-read'), 'someone-p9');
    const answer = await gather('g1', [
      [true, key('cache-new1'), key('claim-new1'), 1, [1, 2], { rows: 1, requestId: 'a' }],
      [true, key('cache-hit'), key('claim-hit'), 1, [3, 4], { rows: 1, requestId: 'b' }],
      [true, key('cache-carried'), key('claim-carried'), 1, [5, 6], { rows: 1, requestId: 'c' }],
      [false, '', key('claim-read'), 2, [7, 8, 9, 10], { rows: 2, requestId: 'd' }],
      [true, key('cache-new2'), key('claim-new2'), 1, [11, 12], { rows: 1, requestId: 'e' }],
    ]);
    expect(answer).toEqual([0, 0, 1, '{"cached":1}', 2, 'other-p3', 0, 1, 0, 2]);
    expect(await redis.mget(key('claim-new1'), key('claim-read'), key('claim-new2'))).toEqual([
      'g1-p0',
      'someone-p9',
      'g1-p2',
    ]);
    expect(await redis.exists(key('claim-hit'))).toBe(0);
    const data = JSON.parse((await redis.hget(key('g1'), 'data')) ?? '{}') as Record<
      string,
      unknown
    >;
    expect(data).toEqual({
      model: 'm',
      version: '1.0.0',
      format: 'task',
      replyTo: 'r1',
      single: false,
      rows: 4,
      values: [1, 2, 7, 8, 9, 10, 11, 12],
      parts: [
        { rows: 1, requestId: 'a' },
        { rows: 2, requestId: 'd' },
        { rows: 1, requestId: 'e' },
      ],
    });
    const [element] = await redis.lrange(k.fast, 0, -1);
    expect(parseFastElement(element ?? '')).toMatchObject({ id: 'g1', timestamp: 1000 });
    expect(JSON.parse(parseFastElement(element ?? '')?.data ?? '')).toEqual(data);
  });

  it('queues nothing when every gathered request is answered without the job', async () => {
    fresh();
    const key = (name: string) => `${k.queueKey}${name}`;
    await redis.set(key('cache-a'), 'A');
    await redis.set(key('claim-b'), 'x-p0');
    expect(
      await gather('n1', [
        [true, key('cache-a'), key('claim-a'), 1, [1], { rows: 1 }],
        [true, key('cache-b'), key('claim-b'), 1, [2], { rows: 1 }],
      ]),
    ).toEqual([1, 'A', 2, 'x-p0']);
    expect(await redis.exists(key('n1'))).toBe(0);
    expect(await redis.llen(k.fast)).toBe(0);
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
});
