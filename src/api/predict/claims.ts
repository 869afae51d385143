import type { Config } from '../../shared/config.js';
import { isCacheEntry } from '../../shared/jobs.js';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../../shared/redis.js';
import { ownerTag, type Owner } from '../jobs/public-ids.js';

/**
 * The key that claims an input in flight (its value: the ref of the job part computing it), so
 * that identical requests of the same owner, on any replica, follow that part instead of running
 * the input again. Where the result cache is per owner (CACHE_SCOPE=key) it is the cache entry's
 * own key: a lookup reads one key for both, a miss writes one, and the worker's entry replaces
 * the claim, while a claim never replaces an entry (it is set NX, or by the script that found
 * the key empty). With a shared cache (a claim must stay its owner's) or none, a key of its own.
 */
export function claimKey(
  config: Pick<Config, 'CACHE_SCOPE'>,
  keys: Keys,
  owner: Owner,
  hash: string,
  cacheKey: string | undefined,
): string {
  return cacheKey !== undefined && config.CACHE_SCOPE === 'key'
    ? cacheKey
    : keys.inflight(ownerTag(owner), hash);
}

/** What an input's cache entry and claim hold (null: nothing there). */
export interface Looked {
  entry: string | null;
  claim: string | null;
}

/** An input's keys: its cache entry's (none while the cache is off) and its claim's. */
export interface InputKeys {
  cacheKey?: string;
  claimKey: string;
}

/** The keys that hold an input's cache entry and claim, in the order `classify` reads them. */
function lookupKeys({ cacheKey, claimKey }: InputKeys): string[] {
  if (cacheKey === undefined) return [claimKey];
  return claimKey === cacheKey ? [cacheKey] : [cacheKey, claimKey];
}

/** What each input's `lookupKeys`, read in one go (`read`, inputs in order), held. */
function classify(inputs: InputKeys[], read: readonly (string | null)[]): Looked[] {
  let at = 0;
  return inputs.map(({ cacheKey, claimKey }) => {
    const entry = cacheKey === undefined ? null : (read[at++] ?? null);
    const claim = claimKey === cacheKey ? entry : (read[at++] ?? null);
    return {
      entry: isCacheEntry(entry) ? entry : null,
      claim: isCacheEntry(claim) ? null : claim,
    };
  });
}

/**
 * Reads the cache entry and the claim of each input in one MGET (one key for both where they
 * share it). The keys must meet in one slot: one input's always do.
 */
export async function readLooked(redis: RedisClient, inputs: InputKeys[]): Promise<Looked[]> {
  return classify(inputs, await redis.mget(...inputs.flatMap(lookupKeys)));
}
