import type { JobsOptions } from 'bullmq';
import type { Config } from '../../shared/config.js';
import {
  PREDICT_JOB,
  parsePartId,
  predictJobOptions,
  partId,
  type PredictJobData,
  type PredictJobResult,
} from '../../shared/jobs.js';
import { fastLaneKeys, GATHER, oneSlot } from '../../shared/fast-lane.js';
import type { FastLanes } from '../jobs/fast-lanes.js';
import type { Keys } from '../../shared/keys.js';
import { shardOfHash, type ShardedQueue } from '../../shared/shards.js';
import type { RedisClient } from '../../shared/redis.js';
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
  requestId?: string;
  /** Longest wait for the result, milliseconds; 0 = do not wait. */
  waitMs: number;
  /**
   * The in-flight claim of this input, read in the same round trip as the cache (null: none;
   * absent: not read yet).
   */
  claim?: string | null;
  /**
   * The cache entry and the claim were not read: read them in the script that queues the
   * request's job (see `canLookUp`).
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
   * Whether a request's cache entry and claim can be read by the script that queues its job
   * (GATHER) instead of by a command of its own first: fast lane on, the keys able to meet in
   * one script, and most recent lookups missed (a hit then waits for its job's turn, and
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
    const claim =
      item.claim !== undefined || item.lookup
        ? (item.claim ?? null)
        : await this.deps.redis.get(this.deps.keys.inflight(ownerTag(item.owner), item.hash));
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
    const { redis, keys } = this.deps;
    const [entry, claim] = await redis.mget(
      item.cacheKey ?? '',
      keys.inflight(ownerTag(item.owner), item.hash),
    );
    if (entry) return { jobId: '', index: 0, coalesced: false, hit: entry };
    return this.place({ ...item, lookup: false, claim: claim ?? null });
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
    const { redis, keys, hub } = this.deps;
    // The first request's input picks the shard: a lone request's identical twins meet there.
    const shard = shardOfHash(items[0]?.hash ?? '', this.deps.config.QUEUE_SHARDS);
    if (items.some((item) => item.lookup)) {
      if (this.deps.lanes.open(shard) && oneSlot(this.deps.config))
        return this.gatherAndAdd(items, shard);
      // The lane closed since these were placed: their cache entries and claims are read first.
      return this.lookUpThenFlush(items);
    }
    const jobId = newJobId(shard);
    const claimMs = Math.max(...items.map((i) => i.waitMs), 30_000);
    hub.expect(jobId);
    const waits = items.map((item) => (item.waitMs > 0 ? hub.wait(jobId, item.waitMs) : undefined));
    // The claims leave with the job, not before it: a lone request pays one round trip for both.
    // Two replicas that both missed each other's claim run the same input twice, harmlessly.
    const claimed = items.map((item, i) => ({
      key: keys.inflight(ownerTag(item.owner), item.hash),
      value: partId(jobId, i),
    }));
    const lane = this.deps.lanes.open(shard);
    const inScript = lane && oneSlot(this.deps.config);
    const claims = inScript
      ? []
      : claimed.map((c) => redis.set(c.key, c.value, 'PX', claimMs, 'NX').catch(() => null));
    try {
      await this.add(jobId, items, lane, inScript ? { claimed, claimMs } : undefined);
    } catch (err) {
      for (const w of waits) w?.cancel();
      await Promise.all(claims);
      // One DEL each: on a Cluster the claims live in different slots.
      await Promise.all(
        items.map((item) =>
          redis.del(keys.inflight(ownerTag(item.owner), item.hash)).catch(() => 0),
        ),
      );
      throw err;
    }
    return items.map((_, i) => ({ jobId, index: i, coalesced: false, wait: waits[i] }));
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

  private async add(
    jobId: string,
    items: GatherItem[],
    onLane: boolean,
    claims?: { claimed: { key: string; value: string }[]; claimMs: number },
  ): Promise<void> {
    if (items.length === 0) return;
    const { data, opts } = this.job(items);
    if (!onLane) {
      await this.deps.queue.add(PREDICT_JOB, data, { jobId, ...opts });
      return;
    }
    await this.deps.lanes.enqueue(
      this.deps.queue.forJob(jobId).toKey(''),
      jobId,
      data,
      opts,
      claims,
    );
  }

  // The requests of a job read their cache entries and claims in the script that queues the job
  // (GATHER): hits and requests carried elsewhere leave it, the rest are its parts. A request
  // alone pays one round trip for all of it.
  private async gatherAndAdd(items: GatherItem[], shard: number): Promise<Placement[]> {
    const { redis, keys, hub } = this.deps;
    const [first] = items as [GatherItem, ...GatherItem[]];
    const jobId = newJobId(shard);
    hub.expect(jobId);
    // Before the script: the worker may answer before the script's own reply is read.
    const waits = items.map((item) => (item.waitMs > 0 ? hub.wait(jobId, item.waitMs) : undefined));
    const queueKey = this.deps.queue.forJob(jobId).toKey('');
    const lane = fastLaneKeys(queueKey);
    // The data as `job` makes it, but for the rows, values and parts the script adds: only
    // those of the requests that need the job.
    const head = JSON.stringify({ ...this.jobHead(first), rows: undefined, values: undefined });
    const itemKeys: string[] = [];
    const itemArgs: (string | number)[] = [];
    for (const item of items) {
      const claim = keys.inflight(ownerTag(item.owner), item.hash);
      // A key of the script's slot in every place (a Cluster refuses any other), read or not.
      itemKeys.push(item.lookup ? (item.cacheKey ?? claim) : claim, claim);
      itemArgs.push(
        item.lookup ? '1' : '0',
        item.data.rows,
        // As JSON.stringify writes finite numbers, without the array's brackets.
        item.data.values.join(','),
        JSON.stringify(partOf(item)),
      );
    }
    let reply: unknown;
    try {
      reply = await GATHER.run(
        redis,
        [`${queueKey}${jobId}`, lane.fast, lane.meta, lane.wait, ...itemKeys],
        [
          jobId,
          PREDICT_JOB,
          `${head.slice(0, -1)},`,
          JSON.stringify(predictJobOptions(this.deps.config)),
          Date.now(),
          Math.max(...items.map((i) => i.waitMs), 30_000),
          items.length,
          ...itemArgs,
        ],
      );
    } catch (err) {
      for (const w of waits) w?.cancel();
      hub.forget(jobId);
      throw err;
    }
    const answers = Array.isArray(reply) ? (reply as (number | string)[]) : [];
    let queued = false;
    const placements = items.map((item, i): Placement | Promise<Placement> => {
      const kind = Number(answers[2 * i]);
      const value = String(answers[2 * i + 1]);
      if (kind === 0) {
        queued = true;
        return { jobId, index: Number(value), coalesced: false, wait: waits[i] };
      }
      waits[i]?.cancel();
      if (kind === 1) return { jobId: '', index: 0, coalesced: false, hit: value };
      // Another request carries this input already (one of its parts): follow that job.
      const carried = parsePartId(value) ?? { jobId: '', index: 0 };
      return this.follow({ ...carried, coalesced: true }, item.waitMs);
    });
    if (!queued) hub.forget(jobId);
    return Promise.all(placements.map((p) => Promise.resolve(p)));
  }

  // Requests placed to be looked up in their job's script whose lane closed meanwhile: one MGET
  // reads every cache entry and claim, and what is left goes through the usual flush.
  private async lookUpThenFlush(items: GatherItem[]): Promise<Placement[]> {
    const { redis, keys } = this.deps;
    const looked = items.filter((item) => item.lookup);
    const read = await redis.mget(
      ...looked.flatMap((item) => [
        item.cacheKey ?? '',
        keys.inflight(ownerTag(item.owner), item.hash),
      ]),
    );
    // Each request's placement, or the index of its part among those flushed as usual.
    const slots: (Placement | Promise<Placement> | number)[] = [];
    const rest: GatherItem[] = [];
    let next = 0;
    for (const item of items) {
      // The looked-up requests' entries and claims stand in `read` in the requests' order.
      const at = item.lookup ? next++ : -1;
      const entry = at < 0 ? null : read[2 * at];
      const claim = at < 0 ? null : read[2 * at + 1];
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
