import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  type Cipher,
  type Decipher,
} from 'node:crypto';
import type { Config } from '../../shared/config.js';
import { ApiError } from '../../shared/errors.js';
import { parsePartId } from '../../shared/jobs.js';
import type { Keys } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../../shared/redis.js';

/** What a public id stands for: a queue job, or one request's part of a gathered job. */
export interface JobRef {
  jobId: string;
  /** Part index in a gathered job; absent for a job of its own. */
  part?: number;
}

/** Owner of everything a request creates: the API key's SHA-256 (hex), or `anon` without keys. */
export type Owner = string;

/** The owner of requests sent without API keys configured. */
export const ANONYMOUS: Owner = 'anon';

const JOB_ID_BYTES = 12;
/** Most public ids of cache entries each PublicIds remembers (see encodeEntry). */
const NAMED_MAX = 4096;
const WHOLE_JOB = 0xffff;
const MAGIC = 0xa51c;
const PUBLIC_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const JOB_ID_RE = /^j[0-9a-f]{24}$/;

// Job ids are cut from a pool of random bytes: one call into the CSPRNG per ~340 ids instead of
// one per id (a few microseconds each, on the path of every queued job).
const ID_POOL_BYTES = 4096;
let idPool = Buffer.alloc(0);
let poolAt = 0;

/**
 * A new queue job id for queue shard `shard`: its first byte names the shard, the rest is
 * random; never all digits and free of ':' (BullMQ's rules).
 */
export function newJobId(shard = 0): string {
  if (poolAt + JOB_ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_POOL_BYTES);
    poolAt = 0;
  }
  const bytes = idPool.subarray(poolAt, poolAt + JOB_ID_BYTES);
  poolAt += JOB_ID_BYTES;
  bytes[0] = shard;
  return `j${bytes.toString('hex')}`;
}

/** The queue shard named by a job id (0 for ids not made by newJobId). */
export function jobShard(jobId: string): number {
  return JOB_ID_RE.test(jobId) ? Number.parseInt(jobId.slice(1, 3), 16) : 0;
}

/** A short, stable tag of an owner for Redis key names (cache and in-flight scopes). */
export function ownerTag(owner: Owner): string {
  return owner === ANONYMOUS ? ANONYMOUS : owner.slice(0, 16);
}

/**
 * Public ids of jobs and parts: one AES block holding the job id, the part index and a check
 * value, encrypted under a key derived from the deployment secret and the owner. Ids are thus
 * unguessable, independent of each other (siblings of one job look unrelated), and an id read
 * under any other owner's key fails its check: other keys get 404 without a Redis read.
 */
export class PublicIds {
  // ECB enciphers each 16-byte block on its own: one cipher and one decipher per owner serve
  // every id (never finalised, no padding, so each update answers its block at once). Making
  // a cipher per id cost more than the rest of a cache hit's id.
  private readonly ciphers = new Map<Owner, { cipher: Cipher; decipher: Decipher }>();

  // Public ids of cache entries, by owner and entry: a hot input's hits name the same part
  // again and again. Emptied when full.
  private readonly named = new Map<string, string>();

  constructor(private readonly secret: Buffer) {}

  /** The public id of part id `partOrJob` (`<job>-p<n>`, or a job id) for `owner`, remembered. */
  encodeEntry(owner: Owner, partOrJob: string): string {
    const key = `${owner}\0${partOrJob}`;
    let id = this.named.get(key);
    if (id === undefined) {
      const part = parsePartId(partOrJob);
      id = this.encode(
        owner,
        part ? { jobId: part.jobId, part: part.index } : { jobId: partOrJob },
      );
      if (this.named.size >= NAMED_MAX) this.named.clear();
      this.named.set(key, id);
    }
    return id;
  }

  private ciphersOf(owner: Owner): { cipher: Cipher; decipher: Decipher } {
    let pair = this.ciphers.get(owner);
    if (!pair) {
      const key = createHmac('sha256', this.secret).update(`inferq-public-id\0${owner}`).digest();
      pair = {
        cipher: createCipheriv('aes-256-ecb', key, null).setAutoPadding(false),
        decipher: createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false),
      };
      this.ciphers.set(owner, pair);
    }
    return pair;
  }

  /** The public id of `ref` for `owner`. */
  encode(owner: Owner, ref: JobRef): string {
    if (!JOB_ID_RE.test(ref.jobId)) throw new Error(`not a public job id: ${ref.jobId}`);
    const block = Buffer.alloc(16);
    Buffer.from(ref.jobId.slice(1), 'hex').copy(block, 0);
    block.writeUInt16BE(ref.part ?? WHOLE_JOB, 12);
    block.writeUInt16BE(MAGIC, 14);
    const hex = this.ciphersOf(owner).cipher.update(block).toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** What `id` stands for when `owner` made it; undefined for any other id. */
  decode(owner: Owner, id: string): JobRef | undefined {
    if (!PUBLIC_ID_RE.test(id)) return undefined;
    const block = this.ciphersOf(owner).decipher.update(Buffer.from(id.replace(/-/g, ''), 'hex'));
    if (block.length !== 16) return undefined;
    if (block.readUInt16BE(14) !== MAGIC) return undefined;
    const part = block.readUInt16BE(12);
    const jobId = `j${block.subarray(0, JOB_ID_BYTES).toString('hex')}`;
    return part === WHOLE_JOB ? { jobId } : { jobId, part };
  }

  /** A fresh id that names nothing (a cache hit computed for another owner). */
  static unrelated(): string {
    const hex = randomBytes(16).toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
}

/**
 * The deployment's id codec. With ID_SECRET it is fixed; otherwise one random secret lives in
 * Redis, created by whichever replica comes first and re-read whenever the connection is
 * (re)established, so that every replica encodes alike, also after a Redis restart.
 */
export class IdSecret {
  private current: Promise<PublicIds> | undefined;
  /** The codec once loaded (a cache hit then names its id without waiting for a promise). */
  loaded: PublicIds | undefined;

  constructor(
    private readonly config: Config,
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly logger: Logger,
  ) {
    if (config.ID_SECRET) {
      const fixed = new PublicIds(createHash('sha256').update(config.ID_SECRET).digest());
      this.current = Promise.resolve(fixed);
      this.loaded = fixed;
      return;
    }
    redis.on('ready', () => {
      this.current = this.load();
      this.current.catch(() => (this.current = undefined));
    });
  }

  /** The codec; 503 while Redis has never been reachable. */
  async ids(): Promise<PublicIds> {
    if (!this.current) {
      this.current = this.load();
      this.current.catch(() => (this.current = undefined));
    }
    return this.current;
  }

  private async load(): Promise<PublicIds> {
    const mine = randomBytes(32).toString('hex');
    try {
      const previous = await this.redis.set(this.keys.idSecret(), mine, 'NX', 'GET');
      const ids = new PublicIds(Buffer.from(previous ?? mine, 'hex'));
      this.loaded = ids;
      return ids;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'id secret not readable');
      throw new ApiError('unavailable', 'Redis is unreachable; retry shortly.', undefined, 1);
    }
  }
}
