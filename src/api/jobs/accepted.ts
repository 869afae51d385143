import type { Context } from 'hono';
import type { ApiDeps, AppEnv } from '../deps.js';
import type { JobRef } from './public-ids.js';
import { respondJson } from '../http/request-frame.js';

/** Public status of a BullMQ state. */
export function publicStatus(state: string): 'queued' | 'active' | 'completed' | 'failed' {
  if (state === 'active') return 'active';
  if (state === 'completed') return 'completed';
  if (state === 'failed') return 'failed';
  return 'queued';
}

/**
 * 202 with the job's link (public id `id` of job `ref`), Location and Retry-After. A job queued
 * by this very request (`fresh`) is reported queued without reading its state: BullMQ's state
 * script cost Redis more than the rest of the submission.
 */
export async function accepted(
  c: Context<AppEnv>,
  deps: ApiDeps,
  id: string,
  ref: JobRef,
  fresh = false,
) {
  const state =
    !fresh && deps.redis.status === 'ready'
      ? await deps.queue.getJobState(ref.jobId).catch(() => 'waiting')
      : 'waiting';
  const status = publicStatus(state);
  const self = `/v1/jobs/${id}`;
  const body = { id, status: status === 'active' ? 'active' : 'queued', links: { self } };
  return respondJson(c, body, 202, { location: self, 'retry-after': '1' });
}
