import type { ThreadTensor } from './thread-protocol.js';

/** Output tensors of one inference run over `rows` instances. */
export interface BatchRun {
  outputs: Record<string, ThreadTensor>;
  ms: number;
}

/** One submitter's share of a batch: its rows' slices of every output. */
export interface BatchSlice {
  outputs: Record<string, ThreadTensor>;
  /** Milliseconds the whole batch took. */
  ms: number;
  /** Instances in the batch this slice ran in. */
  batchSize: number;
}

/** Options of MicroBatcher. */
export interface MicroBatcherOptions {
  /** Most instances per run; a single larger submission runs alone. */
  maxBatchSize: number;
  /** Longest the first submission waits for company, milliseconds. */
  maxBatchDelayMs: number;
  /** Values per instance. */
  rowSize: number;
  /** Runs the model over `rows` instances laid out row-major in `values`. */
  run: (rows: number, values: Float32Array) => Promise<BatchRun>;
  /**
   * Run a partial batch at once when no run is in flight (rows that arrive in the same event-loop
   * turn still go together); while a run is in flight, rows gather until it ends or the delay
   * passes. Batches under load without making a lone request wait. Default false.
   */
  runWhenIdle?: boolean;
  /** Called after every run with its size, for metrics. */
  onBatch?: (rows: number, ms: number) => void;
}

interface Entry {
  rows: number;
  values: Float32Array;
  resolve: (s: BatchSlice) => void;
  reject: (e: unknown) => void;
}

function sliceTensor(
  t: ThreadTensor,
  totalRows: number,
  start: number,
  rows: number,
): ThreadTensor {
  const per = t.data.length / totalRows;
  const data = t.data.slice(start * per, (start + rows) * per) as ThreadTensor['data'];
  return { type: t.type, data, dims: [rows, ...t.dims.slice(1)] };
}

/**
 * Gathers submissions for one model version into batches of up to maxBatchSize instances, or
 * whatever arrived within maxBatchDelayMs, and runs each batch once.
 */
export class MicroBatcher {
  private queue: Entry[] = [];
  private queuedRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private inFlight = 0;

  constructor(private readonly options: MicroBatcherOptions) {}

  /** Adds `rows` instances; resolves with their slices of the batch outputs. */
  submit(rows: number, values: Float32Array): Promise<BatchSlice> {
    return new Promise<BatchSlice>((resolve, reject) => {
      if (this.queuedRows + rows > this.options.maxBatchSize && this.queue.length > 0) this.flush();
      this.queue.push({ rows, values, resolve, reject });
      this.queuedRows += rows;
      if (this.queuedRows >= this.options.maxBatchSize) {
        this.flush();
        return;
      }
      this.timer ??= setTimeout(() => this.flush(), this.options.maxBatchDelayMs);
      if (this.options.runWhenIdle && this.inFlight === 0) {
        this.immediate ??= setImmediate(() => {
          this.immediate = undefined;
          if (this.inFlight === 0) this.flush();
        });
      }
    });
  }

  /** Runs whatever is waiting now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = undefined;
    const batch = this.queue;
    this.queue = [];
    this.queuedRows = 0;
    if (batch.length > 0) void this.runBatch(batch);
  }

  private async runBatch(batch: Entry[]): Promise<void> {
    const total = batch.reduce((n, e) => n + e.rows, 0);
    const values = new Float32Array(total * this.options.rowSize);
    let offset = 0;
    for (const e of batch) {
      values.set(e.values, offset * this.options.rowSize);
      offset += e.rows;
    }
    let result: BatchRun;
    this.inFlight++;
    try {
      result = await this.options.run(total, values);
    } catch (err) {
      // One bad submission must not fail its neighbours: run each alone to find who fails.
      if (batch.length > 1) for (const e of batch) void this.runBatch([e]);
      else batch[0]?.reject(err);
      return;
    } finally {
      this.inFlight--;
      // The model is free again: what gathered meanwhile goes now, as one batch.
      if (this.options.runWhenIdle && this.inFlight === 0 && this.queue.length > 0) this.flush();
    }
    this.options.onBatch?.(total, result.ms);
    let start = 0;
    for (const e of batch) {
      const outputs: Record<string, ThreadTensor> = {};
      for (const [name, t] of Object.entries(result.outputs))
        outputs[name] = sliceTensor(t, total, start, e.rows);
      e.resolve({ outputs, ms: result.ms, batchSize: total });
      start += e.rows;
    }
  }
}
