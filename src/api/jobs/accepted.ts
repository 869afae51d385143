import type { Context } from 'hono';
import type { ApiDeps, AppEnv } from '../deps.js';
import type { JobRef } from './public-ids.js';

/** Public status of a BullMQ state. */
export function publicStatus(state: string): 'queued' | 'active' | 'completed' | 'failed' {
  if (state === 'active') return 'active';
  if (state === 'completed') return 'completed';
  if (state === 'failed') return 'failed';
  return 'queued';
}

/** 202 with the job's link (public id `id` of job `ref`), Location and Retry-After. */
export async function accepted(c: Context<AppEnv>, deps: ApiDeps, id: string, ref: JobRef) {
  const state =
    deps.redis.status === 'ready'
      ? await deps.queue.getJobState(ref.jobId).catch(() => 'waiting')
      : 'waiting';
  const status = publicStatus(state);
  const self = `/v1/jobs/${id}`;
  c.header('Location', self);
  c.header('Retry-After', '1');
  return c.json({ id, status: status === 'active' ? 'active' : 'queued', links: { self } }, 202);
}
