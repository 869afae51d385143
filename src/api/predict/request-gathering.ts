import type { JobsOptions } from 'bullmq';
import type { Config } from '../../shared/config.js';
import {
  PREDICT_JOB,
  isCacheEntry,
  parsePartId,
  predictJobOptions,
  partId,
  type PredictJobData,
  type PredictJobResult,
} from '../../shared/jobs.js';
import { fastLaneKeys, oneSlot, queueGathered, type GatheredRead } from '../../shared/fast-lane.js';
import type { FastLanes } from '../jobs/fast-lanes.js';
import type { Keys } from '../../shared/keys.js';
import { shardOfHash, type ShardedQueue } from '../../shared/shards.js';
import type { RedisClient } from '../../shared/redis.js';
import { readLooked, type Looked } from './claims.js';
import { Gatherer } from './group-commit.js';
import { newJobId, ownerTag, type Owner } from '../jobs/public-ids.js';
import type { ResultHub, Wait } from '../jobs/results-hub.js';

/** One online request to place in a gathered job. */
export interface GatherItem {
  data: Omit<PredictJobData, 'cacheKey' | 'requestId' | 'parts' | 'single' | 'owner'>;
  single: boolean;
  /** Owner of the request; identical inputs coalesce only within one owner. */
  owner: Owner;
  /** Content hash of the input: keys the cache and cross-request coalescing. */
  hash: string;
  cacheKey?: string;
  /** Where the input is claimed while in flight (`claimKey`: its cache key where it can be). */
  claimKey: string;
  requestId?: string;
  /** Longest wait for the result, milliseconds; 0 = do not wait. */
  waitMs: number;
  /**
   * The in-flight claim of this input, read in the same round trip as the cache (null: none;
   * absent: not read yet).
   */
  claim?: string | null;
  /**
   * The cache entry and the claim were not read: read them where the request's job is queued
   * (ENQUEUE, see `canLookUp`).
   */
  lookup?: boolean;
}

/** Where a request's rows went: part `index` of job `jobId`, and the wait for that job. */
export interface Placement {
  jobId: string;
  index: number;
  /** Whether an identical request already in flight carries this one. */
  coalesced: boolean;
  wait?: Wait;
  /** The cache entry found instead of queueing (a `lookup` item only). */
  hit?: string;
}

/** Options of OnlineGatherer. */
export interface OnlineGathererDeps {
  config: Config;
  queue: ShardedQueue<PredictJobData, PredictJobResult>;
  redis: RedisClient;
  keys: Keys;
  hub: ResultHub;
  /** This replica's id: workers reply here. */
  replicaId: string;
  /** Which shards' fast lanes a worker consumes. */
  lanes: FastLanes;
}

const MAX_PARTS = 128;
const MAX_ROWS = 2048;
const NOTHING: Looked = { entry: null, claim: null };

/**
 * Puts concurrent online requests for the same model version into shared queue jobs (group
 * commit: a lone request goes out at once; those arriving while a queue write is in flight
 * go together in the next one), so that queue work is paid once per group, not per request.
 * Identical inputs of one owner in flight share one part: in this process through a map, across
 * API replicas through a short-lived `inflight` key naming the part that carries them.
 */
export class OnlineGatherer {
  private readonly gatherer: Gatherer<GatherItem, Placement>;
  private readonly local = new Map<string, Promise<Placement>>();
  /** Share of recent cache lookups that hit. */
  private hitRate = 0;

  constructor(private readonly deps: OnlineGathererDeps) {
    this.gatherer = new Gatherer<GatherItem, Placement>({
      maxItems: MAX_PARTS,
      maxRows: MAX_ROWS,
      rowsOf: (item) => item.data.rows,
      flush: (_key, items) => this.flush(items),
    });
  }

  /**
   * Whether a request's cache entry and claim can be read where its job is queued (ENQUEUE,
   * after the claims) instead of by a command of its own first: fast lane on, the keys able to
   * meet in one slot, and most recent lookups missed (a hit then waits for its job's turn, and
   * carries its rows to Redis for nothing).
   */
  canLookUp(item: Pick<GatherItem, 'hash'>): boolean {
    const { config } = this.deps;
    return (
      this.hitRate < 0.5 &&
      oneSlot(config) &&
      this.deps.lanes.open(shardOfHash(item.hash, config.QUEUE_SHARDS))
    );
  }

  /** Whether most recent cache lookups hit. */
  mostlyHits(): boolean {
    return this.hitRate >= 0.5;
  }

  /** Notes the outcome of a cache lookup (moving average over about the last 20). */
  looked(hit: boolean): void {
    this.hitRate += ((hit ? 1 : 0) - this.hitRate) / 20;
  }

  /** Places a request's rows in a job; resolves once the job is queued (or found). */
  async place(item: GatherItem): Promise<Placement> {
    const local = `${ownerTag(item.owner)}:${item.hash}`;
    const pending = this.local.get(local);
    if (pending) {
      if (item.lookup) return this.lookUp(item);
      const placed = await pending;
      // Found in the cache by the script that queued its twins: the same entry answers this one.
      if (placed.hit !== undefined) return placed;
      return this.follow(placed, item.waitMs);
    }
    let claim = item.claim !== undefined || item.lookup ? (item.claim ?? null) : undefined;
    if (claim === undefined) {
      const value = await this.deps.redis.get(item.claimKey);
      // The claim's key is the cache entry's too: the entry may have come meanwhile.
      if (isCacheEntry(value)) return { jobId: '', index: 0, coalesced: false, hit: value };
      claim = value;
    }
    // Another replica carries this input already (one of its parts): follow that job.
    const carried = claim ? parsePartId(claim) : undefined;
    if (carried) return this.follow({ ...carried, coalesced: true }, item.waitMs);
    const placing = this.gatherer.submit(laneOf(item), item);
    this.local.set(local, placing);
    try {
      const placement = await placing;
      return placement;
    } finally {
      this.forget(local, placing, item.waitMs);
    }
  }

  // Identical requests keep joining the same part until its job can have ended.
  private forget(hash: string, placing: Promise<Placement>, waitMs: number): void {
    void placing.then(
      (p) => {
        const done = () => this.local.get(hash) === placing && this.local.delete(hash);
        // A request answered from the cache leaves nothing in flight to join.
        if (p.hit !== undefined) done();
        else if (p.wait) void p.wait.promise.then(done);
        else setTimeout(done, Math.min(waitMs, 1000)).unref();
      },
      () => this.local.delete(hash),
    );
  }

  // A lookup item that cannot go alone: the usual cache and claim read, then the usual place.
  private async lookUp(item: GatherItem): Promise<Placement> {
    const [{ entry, claim }] = (await readLooked(this.deps.redis, [item])) as [Looked];
    if (entry) return { jobId: '', index: 0, coalesced: false, hit: entry };
    return this.place({ ...item, lookup: false, claim });
  }

  private async follow(placement: Placement, waitMs: number): Promise<Placement> {
    // Another replica may have queued the job: its replies go there, so read it now and then.
    const wait =
      waitMs > 0 ? this.deps.hub.wait(placement.jobId, waitMs, { poll: true }) : undefined;
    if (wait) {
      const done = await this.deps.hub.peek(placement.jobId);
      if (done) this.deps.hub.settle(placement.jobId, done);
    }
    return { jobId: placement.jobId, index: placement.index, coalesced: true, wait };
  }

  private async flush(items: GatherItem[]): Promise<Placement[]> {
    const { redis, hub } = this.deps;
    // The first request's input picks the shard: a lone request's identical twins meet there.
    const shard = shardOfHash(items[0]?.hash ?? '', this.deps.config.QUEUE_SHARDS);
    const lane = this.deps.lanes.open(shard);
    if (lane && oneSlot(this.deps.config)) return this.gatherAndAdd(items, shard);
    // The lane closed since these were placed: their cache entries and claims are read first.
    if (items.some((item) => item.lookup)) return this.lookUpThenFlush(items);
    const jobId = newJobId(shard);
    const claimMs = claimMsOf(items);
    hub.expect(jobId);
    const waits = items.map((item) => (item.waitMs > 0 ? hub.wait(jobId, item.waitMs) : undefined));
    // Part i is item i, so the claims name the right part. Two replicas that both missed each
    // other's claim run the same input twice, harmlessly.
    const claims = items.map((item, i) =>
      redis.set(item.claimKey, partId(jobId, i), 'PX', claimMs, 'NX').catch(() => null),
    );
    try {
      await this.add(jobId, items, lane);
    } catch (err) {
      for (const w of waits) w?.cancel();
      await Promise.all(claims);
      await this.unclaim(items);
      throw err;
    }
    return items.map((_, i) => ({ jobId, index: i, coalesced: false, wait: waits[i] }));
  }

  // Claims of a job that could not be queued. One DEL each: on a Cluster the claims live in
  // different slots. (Where a claim shares the cache entry's key, an entry written meanwhile
  // goes too: the next miss writes it again.)
  private async unclaim(items: GatherItem[]): Promise<void> {
    await Promise.all(items.map((item) => this.deps.redis.del(item.claimKey).catch(() => 0)));
  }

  // Part i is item i, so the claims name the right part.
  private job(items: GatherItem[]): { data: PredictJobData; opts: JobsOptions } {
    const [first] = items as [GatherItem, ...GatherItem[]];
    // One loop, not flatMap: flatMap of a job's rows took longer than the rest of the job's
    // making (~50 µs for 16 requests of 30 values).
    let rows = 0;
    let size = 0;
    for (const item of items) {
      rows += item.data.rows;
      size += item.data.values.length;
    }
    const values = new Array<number>(size);
    let at = 0;
    for (const item of items) for (const v of item.data.values) values[at++] = v;
    const data: PredictJobData = { ...this.jobHead(first), rows, values, parts: items.map(partOf) };
    return { data, opts: predictJobOptions(this.deps.config) };
  }

  // A gathered job's data but for its rows, values and parts: model, version, format, replica.
  private jobHead(first: GatherItem): Omit<PredictJobData, 'parts'> {
    return { ...first.data, replyTo: this.deps.replicaId, single: false };
  }

  private async add(jobId: string, items: GatherItem[], onLane: boolean): Promise<void> {
    if (items.length === 0) return;
    const { data, opts } = this.job(items);
    if (!onLane) {
      await this.deps.queue.add(PREDICT_JOB, data, { jobId, ...opts });
      return;
    }
    await this.deps.lanes.enqueue(this.deps.queue.forJob(jobId).toKey(''), jobId, data, opts);
  }

  // On the fast lane, in one round trip (`queueGathered`): every request's claim, then the job,
  // queued unless each request turns out answered from the cache or carried by another job (read
  // after the claims, so that what the script decided and what this reads agree). A request
  // alone pays one round trip for lookup, claim and queueing. Every request is a part of the
  // job (part i is item i, as its claim says): one answered meanwhile is computed again, which
  // is rare while lookups ride here (most missed) and costs less than sorting parts out in Lua.
  private async gatherAndAdd(items: GatherItem[], shard: number): Promise<Placement[]> {
    const { redis, hub } = this.deps;
    const jobId = newJobId(shard);
    hub.expect(jobId);
    // Before the round trip: the worker may answer before its reply is read.
    const waits = items.map((item) => (item.waitMs > 0 ? hub.wait(jobId, item.waitMs) : undefined));
    const { data, opts } = this.job(items);
    let queued: { read: GatheredRead[]; queued: boolean };
    try {
      queued = await queueGathered(redis, {
        lane: fastLaneKeys(this.deps.queue.forJob(jobId).toKey('')),
        id: jobId,
        name: PREDICT_JOB,
        data: JSON.stringify(data),
        opts: JSON.stringify(opts),
        timestamp: Date.now(),
        claims: items.map((item) => item.claimKey),
        // A shared cache: claims in keys of their own.
        entries: items.every((item) => (item.cacheKey ?? item.claimKey) === item.claimKey)
          ? undefined
          : items.map((item) => item.cacheKey ?? item.claimKey),
        claimMs: claimMsOf(items),
      });
    } catch (err) {
      for (const w of waits) w?.cancel();
      hub.forget(jobId);
      await this.unclaim(items);
      throw err;
    }
    const placements = items.map((item, i): Placement | Promise<Placement> => {
      const { entry, claim } = queued.read[i] ?? { entry: '', claim: '' };
      const hit = item.cacheKey !== undefined && isCacheEntry(entry) ? entry : undefined;
      const carried = !hit && claim !== partId(jobId, i) ? parsePartId(claim) : undefined;
      if (!hit && !carried) {
        if (queued.queued) return { jobId, index: i, coalesced: false, wait: waits[i] };
        // Not queued, yet this request needs a job (cannot happen: ENQUEUE decided from the
        // same read): it goes again, alone.
        waits[i]?.cancel();
        return this.place({ ...item, lookup: false, claim: null });
      }
      waits[i]?.cancel();
      if (hit) return { jobId: '', index: 0, coalesced: false, hit };
      // Another request carries this input already (one of its parts): follow that job.
      return this.follow({ ...carried!, coalesced: true }, item.waitMs);
    });
    if (!queued.queued) hub.forget(jobId);
    return Promise.all(placements.map((p) => Promise.resolve(p)));
  }

  // Requests placed to be looked up in their job's script whose lane closed meanwhile: one MGET
  // reads every cache entry and claim, and what is left goes through the usual flush.
  private async lookUpThenFlush(items: GatherItem[]): Promise<Placement[]> {
    const read = await readLooked(
      this.deps.redis,
      items.filter((item) => item.lookup),
    );
    // Each request's placement, or the index of its part among those flushed as usual.
    const slots: (Placement | Promise<Placement> | number)[] = [];
    const rest: GatherItem[] = [];
    let next = 0;
    for (const item of items) {
      // The looked-up requests' entries and claims stand in `read` in the requests' order.
      const { entry, claim } = (item.lookup ? read[next++] : undefined) ?? NOTHING;
      const carried = claim ? parsePartId(claim) : undefined;
      if (entry) slots.push({ jobId: '', index: 0, coalesced: false, hit: entry });
      else if (carried) slots.push(this.follow({ ...carried, coalesced: true }, item.waitMs));
      else slots.push(rest.push({ ...item, lookup: false, claim: null }) - 1);
    }
    const flushed = rest.length > 0 ? await this.flush(rest) : [];
    return Promise.all(
      slots.map((slot) => Promise.resolve(typeof slot === 'number' ? flushed[slot]! : slot)),
    );
  }
}

/** How long the claims of a job's requests last: its longest wait, at least 30 s. */
function claimMsOf(items: GatherItem[]): number {
  return Math.max(...items.map((i) => i.waitMs), 30_000);
}

/** The part of a gathered job that carries `item`. */
function partOf(item: GatherItem): NonNullable<PredictJobData['parts']>[number] {
  return {
    rows: item.data.rows,
    single: item.single,
    cacheKey: item.cacheKey,
    requestId: item.requestId,
    owner: item.owner,
  };
}

/** The gathering lane of an item: one per model version and output format. */
function laneOf(item: Pick<GatherItem, 'data'>): string {
  return `${item.data.model}@${item.data.version}:${item.data.format}`;
}
