import type { Context } from 'hono';
import type { ApiDeps, AppEnv } from '../deps.js';

/** Public status of a BullMQ state. */
export function publicStatus(state: string): 'queued' | 'active' | 'completed' | 'failed' {
  if (state === 'active') return 'active';
  if (state === 'completed') return 'completed';
  if (state === 'failed') return 'failed';
  return 'queued';
}

/** 202 with the job's link, Location and Retry-After. */
export async function accepted(c: Context<AppEnv>, deps: ApiDeps, jobId: string) {
  const state =
    deps.redis.status === 'ready'
      ? await deps.queue.getJobState(jobId).catch(() => 'waiting')
      : 'waiting';
  const status = publicStatus(state);
  const self = `/v1/jobs/${jobId}`;
  c.header('Location', self);
  c.header('Retry-After', '1');
  return c.json(
    { id: jobId, status: status === 'active' ? 'active' : 'queued', links: { self } },
    202,
  );
}
