import { createHash } from 'node:crypto';
import type { CommandSpec } from './corked.js';
import type { RedisClient } from './redis.js';

/**
 * A Lua script run by EVALSHA, loaded with EVAL the first time a server does not know it. Every
 * key it touches is passed in KEYS and shares the `{prefix}` hash tag, so it is Cluster-safe.
 */
export class LuaScript {
  /** SHA1 of the script (what EVALSHA names it by). */
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Runs the script with `keys` and `args`. */
  async run(
    redis: RedisClient,
    keys: string[],
    args: (string | number | Buffer)[],
  ): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }

  /** The script's EVALSHA, to send with other commands (sendTogether; see `replyOf`). */
  command(keys: string[], args: (string | number)[]): CommandSpec {
    return ['evalsha', this.sha, keys.length, ...keys, ...args];
  }

  /**
   * What `command`, sent with others, answered; if the server had lost its scripts (a restart),
   * what the script answers run again (the commands before it went).
   */
  async replyOf(
    sent: Promise<unknown>,
    redis: RedisClient,
    keys: string[],
    args: (string | number)[],
  ): Promise<unknown> {
    try {
      return await sent;
    } catch (err) {
      if (!isNoScript(err)) throw err;
      return this.run(redis, keys, args);
    }
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

// The batch record is one hash. Its `status` is 'uploading' while the rows still arrive (chunks
// already run), then 'queued' (seal), 'completed' or 'cancelled'; `total` and `chunks` are known
// from the seal on. A rejected upload's record is deleted: every script below treats a missing
// record as "do nothing", so a worker that finishes a chunk of it writes no result. Chunk claims
// live in the hash as fields `c:<n>`: absent (not started), 'run' (a worker took it), 'done'
// (counted) or 'cancel' (cancelled before it started). A claim only moves forward, which makes
// every chunk count exactly once under at-least-once delivery.

/**
 * Worker, before a chunk: KEYS[1] batch hash, KEYS[2] staged input key; ARGV chunk, now-ms.
 * Returns 'missing' (the staged rows are dropped), 'cancel', 'done' or 'run' (the chunk is the
 * caller's to compute).
 */
export const START_CHUNK = new LuaScript(`
local field = 'c:' .. ARGV[1]
local meta = redis.call('HMGET', KEYS[1], 'status', field, 'startedAt')
if not meta[1] then
  redis.call('DEL', KEYS[2])
  return 'missing'
end
if meta[2] == 'cancel' or meta[2] == 'done' then return meta[2] end
if meta[3] then redis.call('HSET', KEYS[1], field, 'run')
else redis.call('HSET', KEYS[1], field, 'run', 'startedAt', ARGV[2]) end
return 'run'
`);

/**
 * Worker, after a chunk: KEYS[1] batch hash, KEYS[2] output key, KEYS[3] staged input key;
 * ARGV chunk, completed rows, failed rows, now-ms, output text, ttl-s.
 * Stores the output and counts the rows once. Returns 0 (already counted), 1, or 2 (the batch
 * has now finished), -1 when the batch is gone (expired or rejected: nothing is stored).
 */
export const FINISH_CHUNK = new LuaScript(`
local field = 'c:' .. ARGV[1]
local meta = redis.call('HMGET', KEYS[1], 'status', field, 'completed', 'failed', 'total')
if not meta[1] then
  redis.call('DEL', KEYS[3])
  return -1
end
if meta[2] == 'done' then return 0 end
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
redis.call('DEL', KEYS[3])
local completed = tonumber(meta[3] or '0') + tonumber(ARGV[2])
local failed = tonumber(meta[4] or '0') + tonumber(ARGV[3])
-- While the upload runs the total is unknown: the seal decides whether the batch has ended.
if not meta[5] or completed + failed < tonumber(meta[5]) then
  redis.call('HSET', KEYS[1], field, 'done', 'completed', completed, 'failed', failed)
  return 1
end
-- Counters are read and written inside one script, so no other chunk interleaves.
local status = meta[1] == 'cancelled' and 'cancelled' or 'completed'
redis.call('HSET', KEYS[1], field, 'done', 'completed', completed, 'failed', failed,
  'status', status, 'finishedAt', ARGV[4])
return 2
`);

/**
 * API, once the upload was read to its end: KEYS[1] batch hash; ARGV total, chunks, now-ms,
 * ttl-s. Moves an 'uploading' record to 'queued' (or 'completed' when every row has already
 * run) and gives it its full lifetime. Returns the new status, or 'missing' when the record is
 * gone (its upload lease lapsed).
 */
export const SEAL_BATCH = new LuaScript(`
local meta = redis.call('HMGET', KEYS[1], 'status', 'completed', 'failed')
if meta[1] ~= 'uploading' then return meta[1] or 'missing' end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'chunks', ARGV[2], 'status', 'queued')
redis.call('EXPIRE', KEYS[1], ARGV[4])
if tonumber(meta[2] or '0') + tonumber(meta[3] or '0') >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'status', 'completed', 'finishedAt', ARGV[3])
  return 'completed'
end
return 'queued'
`);

/**
 * API, DELETE: KEYS[1] batch hash; ARGV now-ms. Claims every chunk not yet started as cancelled
 * and counts its rows as failed and cancelled. Returns {'missing'}, {'completed'}, or
 * {'ok', {chunk, ...}} with the chunks it cancelled (none when the batch was already cancelled).
 */
export const CANCEL_BATCH = new LuaScript(`
local meta = redis.call('HMGET', KEYS[1], 'status', 'chunks', 'chunkRows', 'total')
if not meta[1] or meta[1] == 'uploading' then return {'missing'} end
if meta[1] == 'completed' then return {'completed'} end
if meta[1] == 'cancelled' then return {'ok', {}} end
redis.call('HSET', KEYS[1], 'status', 'cancelled')
local chunks, chunkRows, total = tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4])
local cancelled, rows = {}, 0
for n = 0, chunks - 1 do
  if redis.call('HSETNX', KEYS[1], 'c:' .. n, 'cancel') == 1 then
    cancelled[#cancelled + 1] = n
    rows = rows + math.min(chunkRows, total - n * chunkRows)
  end
end
local failed = redis.call('HINCRBY', KEYS[1], 'failed', rows)
redis.call('HINCRBY', KEYS[1], 'cancelled', rows)
local completed = tonumber(redis.call('HGET', KEYS[1], 'completed') or '0')
if completed + failed >= total then redis.call('HSETNX', KEYS[1], 'finishedAt', ARGV[1]) end
return {'ok', cancelled}
`);
