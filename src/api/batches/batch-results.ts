import {
  cancelledLines,
  chunkJobId,
  decodeChunk,
  rowsOfChunk,
  type BatchRecord,
} from '../../shared/batches.js';
import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../../shared/redis.js';
import type { ResultHub } from '../jobs/results-hub.js';

/** What reading a batch's results needs. */
export interface ResultReaderDeps {
  redis: RedisClient;
  keys: Keys;
  hub: ResultHub;
  /** How long to wait for a chunk's completion event before looking again, milliseconds. */
  recheckMs?: number;
}

/** Chunks whose results are asked for ahead of the one being sent. */
const READ_AHEAD = 4;

/**
 * Yields the NDJSON text of every chunk of a batch in order, one GET per chunk, the next few
 * asked for while one is sent (a 1M-row batch is 500 chunks: one round trip each in turn took
 * a second of the download). A chunk not done yet is awaited through the completion event of its
 * job (no polling loop), with a periodic second look because events are best-effort. Ends early
 * when `aborted()` turns true.
 */
export async function* readResults(
  deps: ResultReaderDeps,
  batch: BatchRecord,
  aborted: () => boolean,
): AsyncGenerator<Buffer> {
  const ahead: Promise<Buffer | null>[] = [];
  let asked = 0;
  try {
    for (let n = 0; n < batch.chunks && !aborted(); n++) {
      while (asked < batch.chunks && asked < n + READ_AHEAD)
        ahead.push(deps.redis.getBuffer(deps.keys.batchOutput(batch.id, asked++)));
      const text = (await ahead.shift()) ?? (await readChunk(deps, batch, n, aborted));
      if (text === undefined) return;
      yield text;
    }
  } finally {
    // Looks left unread when the reader stopped early must not reject unhandled.
    for (const look of ahead) look.catch(() => undefined);
  }
}

async function readChunk(
  deps: ResultReaderDeps,
  batch: BatchRecord,
  n: number,
  aborted: () => boolean,
): Promise<Buffer | undefined> {
  const { redis, keys, hub } = deps;
  const outKey = keys.batchOutput(batch.id, n);
  const done = await redis.getBuffer(outKey);
  if (done) return done;
  while (!aborted()) {
    // Registered before the look, so a completion in between is not missed.
    const wait = hub.wait(chunkJobId(batch.id, n), deps.recheckMs ?? 2000);
    const text = await redis.getBuffer(outKey);
    if (text) {
      wait.cancel();
      return text;
    }
    if ((await wait.promise) !== undefined) continue;
    const fallback = await orphanedChunk(deps, batch, n);
    if (fallback !== undefined) return fallback ?? undefined;
  }
  return undefined;
}

/**
 * After a quiet spell: a chunk whose claim says cancelled but has no output (its writer died
 * mid-cancel) gets cancelled lines built here; null when the batch has expired, undefined to
 * keep waiting.
 */
async function orphanedChunk(
  deps: ResultReaderDeps,
  batch: BatchRecord,
  n: number,
): Promise<Buffer | null | undefined> {
  const { redis, keys } = deps;
  const claim = await redis.hget(keys.batch(batch.id), `c:${n}`);
  if (claim === null && !(await redis.exists(keys.batch(batch.id)))) return null;
  if (claim !== 'cancel') return undefined;
  // The canceller writes the output before it deletes the input: read in that reverse order.
  const staged = await redis.getBuffer(keys.batchInput(batch.id, n));
  const written = await redis.getBuffer(keys.batchOutput(batch.id, n));
  if (written) return written;
  const ids = staged ? decodeChunk(staged).idTexts : [];
  const rows = rowsOfChunk(batch.total, batch.chunkRows, n);
  return Buffer.from(cancelledLines(n * batch.chunkRows, rows, ids));
}
