import type { Keys } from '../../shared/keys.js';
import type { RedisClient } from '../../shared/redis.js';

// GCRA (a token bucket kept as one timestamp): the key holds the theoretical arrival time (TAT)
// of the next request in ms. A request is allowed when TAT - burst * interval <= now. Redis's own
// clock is used so that every API replica judges by the same time.
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - burst * interval
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now))
return {1, 0}
`;

const COMMAND = 'inferqRateLimit';

interface RateLimitCommand {
  [COMMAND](key: string, intervalMs: number, burst: number): Promise<[number, number]>;
}

/** Outcome of one rate-limit check. */
export interface RateDecision {
  allowed: boolean;
  /** When refused: milliseconds until a request would be allowed. */
  retryAfterMs: number;
}

/** Per-client request rate limit held in Redis (one Lua script, one round trip per request). */
export class RateLimiter {
  private readonly intervalMs: number;
  private readonly burst: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    /** Sustained requests per second. */
    rps: number,
    /** Requests allowed at once; 0 = one second's worth. */
    burst: number,
  ) {
    this.intervalMs = 1000 / rps;
    this.burst = burst > 0 ? burst : Math.max(1, Math.ceil(rps));
    redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: GCRA_LUA });
  }

  /** Counts one request of `clientId` (an API key's SHA-256, or an IP). */
  async take(clientId: string): Promise<RateDecision> {
    const command = this.redis as unknown as RateLimitCommand;
    const [allowed, retryAfterMs] = await command[COMMAND](
      this.keys.rateLimit(clientId),
      this.intervalMs,
      this.burst,
    );
    return { allowed: allowed === 1, retryAfterMs };
  }
}
