import type { Redis } from 'ioredis';
import { ANONYMOUS, PublicIds } from '../../src/api/jobs/public-ids.js';
import { createKeys, PREDICT_QUEUE } from '../../src/shared/keys.js';

/** The public-id codec of a deployment, from the secret its API keeps in Redis. */
export async function publicIdsOf(redis: Redis, prefix: string): Promise<PublicIds> {
  const secret = await redis.get(createKeys(prefix).idSecret());
  if (!secret) throw new Error(`no id secret under ${prefix}`);
  return new PublicIds(Buffer.from(secret, 'hex'));
}

/** The queue job behind each public id (made for `owner`, anonymous by default). */
export async function jobIdsOf(
  redis: Redis,
  prefix: string,
  publicIds: string[],
  owner = ANONYMOUS,
): Promise<string[]> {
  const codec = await publicIdsOf(redis, prefix);
  return publicIds.map((id) => codec.decode(owner, id)?.jobId ?? id);
}

/** The fields of a job hash that show who ran it and how often. */
export interface JobAudit {
  processedBy?: string;
  attemptsStarted: number;
  finishedOn?: number;
  returnvalue?: string;
  failedReason?: string;
}

/**
 * Reads the audit fields of many job hashes in one pipeline. Public ids (of anonymous requests)
 * are read from the job that carried them.
 */
export async function auditJobs(
  redis: Redis,
  prefix: string,
  jobIds: string[],
  queue = PREDICT_QUEUE,
): Promise<Map<string, JobAudit>> {
  const internal = await jobIdsOf(redis, prefix, jobIds);
  const pipeline = redis.pipeline();
  for (const id of internal) {
    pipeline.hmget(
      `${prefix}:${queue}:${id}`,
      'pb',
      'ats',
      'finishedOn',
      'returnvalue',
      'failedReason',
    );
  }
  const replies = (await pipeline.exec()) ?? [];
  const out = new Map<string, JobAudit>();
  jobIds.forEach((id, i) => {
    const [pb, ats, finishedOn, returnvalue, failedReason] = (replies[i]?.[1] ?? []) as (
      string | null
    )[];
    out.set(id, {
      ...(pb ? { processedBy: pb } : {}),
      attemptsStarted: Number(ats ?? 0),
      ...(finishedOn ? { finishedOn: Number(finishedOn) } : {}),
      ...(returnvalue ? { returnvalue } : {}),
      ...(failedReason ? { failedReason } : {}),
    });
  });
  return out;
}
