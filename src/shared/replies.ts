import type { JobFailure } from './errors.js';
import type { PredictJobResult } from './jobs.js';
import type { RedisClient } from './redis.js';

/**
 * How a job ended, as a worker tells the one API replica that queued it (its `replyTo`),
 * straight after inference and before BullMQ's bookkeeping. Best-effort, like any pub/sub
 * message: a replica that misses one reads the job's stored result instead.
 */
export type ReplyMessage =
  | { jobId: string; state: 'completed'; result: PredictJobResult }
  | { jobId: string; state: 'failed'; failure: JobFailure };

/**
 * The pub/sub channel of API replica `replicaId`. Its hash tag is the replica's own, so on a
 * Redis Cluster each replica's channel lives on one node (sharded pub/sub), not on the slot of
 * the deployment's queues, and no other node or replica sees its messages.
 */
export function replyChannel(prefix: string, replicaId: string): string {
  return `${prefix.replace(/[{}]/g, '')}:reply:{${replicaId}}`;
}

/** Whether a connection talks to a Cluster (sharded pub/sub) rather than one server. */
function isCluster(redis: RedisClient): boolean {
  return 'nodes' in redis && typeof redis.nodes === 'function';
}

/** Publishes `message` on `channel` (SPUBLISH on a Cluster, PUBLISH otherwise). */
export function publishCommand(redis: RedisClient): 'spublish' | 'publish' {
  return isCluster(redis) ? 'spublish' : 'publish';
}

/** Subscribes a dedicated connection to `channel`; `onMessage` gets each message's text. */
export async function subscribeChannel(
  subscriber: RedisClient,
  channel: string,
  onMessage: (text: string) => void,
): Promise<void> {
  if (isCluster(subscriber)) {
    subscriber.on('smessage', (ch: string, text: string) => ch === channel && onMessage(text));
    await subscriber.ssubscribe(channel);
  } else {
    subscriber.on('message', (ch: string, text: string) => ch === channel && onMessage(text));
    await subscriber.subscribe(channel);
  }
}
