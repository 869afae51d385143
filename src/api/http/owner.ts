import type { Context } from 'hono';
import type { Config } from '../../shared/config.js';
import { ApiError } from '../../shared/errors.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { ANONYMOUS, ownerTag, type JobRef, type Owner } from '../jobs/public-ids.js';

/** The owner of a request: its API key's digest, or the one anonymous owner without API_KEYS. */
export function ownerOf(c: Context<AppEnv>): Owner {
  return c.get('apiKeyId') ?? ANONYMOUS;
}

/** Who shares a result-cache entry made for `owner` (CACHE_SCOPE). */
export function cacheScope(config: Config, owner: Owner): string {
  return config.CACHE_SCOPE === 'shared' ? 'shared' : ownerTag(owner);
}

/**
 * The job a public id names for `owner`; 404 job_not_found for anything else (malformed, made
 * for another key, or shaped like one of BullMQ's own key names), so no id reaches Redis raw.
 */
export async function jobRefOf(deps: ApiDeps, owner: Owner, id: string): Promise<JobRef> {
  const ref = (await deps.ids.ids()).decode(owner, id);
  if (!ref) throw new ApiError('job_not_found', `Job "${id.slice(0, 128)}" does not exist.`);
  return ref;
}
