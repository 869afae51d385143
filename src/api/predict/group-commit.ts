/** Options of Gatherer. */
export interface GathererOptions<T, R> {
  /** Most items in one flush. */
  maxItems: number;
  /** Most rows in one flush (items carry a row count). */
  maxRows: number;
  /** Sends one group; resolves with one result per item, in order. */
  flush: (key: string, items: T[]) => Promise<R[]>;
  /** Rows of an item. */
  rowsOf: (item: T) => number;
}

interface Pending<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

interface Lane<T, R> {
  waiting: Array<Pending<T, R>>;
  inFlight: number;
  /** A send is due once this turn of the event loop has read what arrived (see `drainSoon`). */
  due: boolean;
}

/**
 * Group commit for queue writes: an item is sent at once when nothing is in flight for its key;
 * items that arrive while a send is in flight, or later in the event-loop turn that brings its
 * reply, wait for it and then go together in one send.
 * A lone request pays no extra latency; under load, many requests share one queue job.
 */
export class Gatherer<T, R> {
  private readonly lanes = new Map<string, Lane<T, R>>();

  constructor(private readonly options: GathererOptions<T, R>) {}

  /** Whether an item submitted under `key` now would be sent at once, alone. */
  idle(key: string): boolean {
    return !this.lanes.has(key);
  }

  /** Queues `item` under `key`; resolves with its own result of the send it went out with. */
  submit(key: string, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let lane = this.lanes.get(key);
      if (!lane) this.lanes.set(key, (lane = { waiting: [], inFlight: 0, due: false }));
      lane.waiting.push({ item, resolve, reject });
      if (lane.inFlight === 0 && !lane.due) this.drain(key, lane);
    });
  }

  private take(lane: Lane<T, R>): Array<Pending<T, R>> {
    const group: Array<Pending<T, R>> = [];
    let rows = 0;
    while (lane.waiting.length > 0 && group.length < this.options.maxItems) {
      const next = lane.waiting[0];
      if (!next) break;
      const r = this.options.rowsOf(next.item);
      if (group.length > 0 && rows + r > this.options.maxRows) break;
      group.push(next);
      lane.waiting.shift();
      rows += r;
    }
    return group;
  }

  private drain(key: string, lane: Lane<T, R>): void {
    const group = this.take(lane);
    if (group.length === 0) {
      if (lane.inFlight === 0) this.lanes.delete(key);
      return;
    }
    lane.inFlight++;
    this.options
      .flush(
        key,
        group.map((p) => p.item),
      )
      .then(
        (results) => group.forEach((p, i) => p.resolve(results[i] as R)),
        (err: unknown) => group.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        lane.inFlight--;
        this.drainSoon(key, lane);
      });
  }

  /**
   * The next send, once the requests that arrived beside the last send's reply were read too:
   * the reply is one of many sockets the event loop serves in a turn, and sending right away
   * would leave the requests read after it in this turn for one more send of their own.
   */
  private drainSoon(key: string, lane: Lane<T, R>): void {
    lane.due = true;
    setImmediate(() => {
      lane.due = false;
      this.drain(key, lane);
    });
  }
}
