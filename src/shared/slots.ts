import calculateSlot from 'cluster-key-slot';
import { Cluster } from 'ioredis';
import type { RedisClient } from './redis.js';

/**
 * MGET over keys that may live in different slots. On a single Redis it is one MGET. On a
 * Cluster, where a multi-key command must stay in one slot, it is one MGET per slot, all sent
 * at once; the values come back in the order of `keys`.
 */
export async function mgetAcrossSlots(
  redis: RedisClient,
  keys: string[],
): Promise<(string | null)[]> {
  if (keys.length === 0) return [];
  if (!(redis instanceof Cluster)) return redis.mget(...keys);
  const bySlot = new Map<number, number[]>();
  keys.forEach((key, i) => {
    const slot = calculateSlot(key);
    const group = bySlot.get(slot);
    if (group) group.push(i);
    else bySlot.set(slot, [i]);
  });
  const out = new Array<string | null>(keys.length).fill(null);
  await Promise.all(
    [...bySlot.values()].map(async (indexes) => {
      const values = await redis.mget(...indexes.map((i) => keys[i] as string));
      indexes.forEach((at, k) => (out[at] = values[k] ?? null));
    }),
  );
  return out;
}
