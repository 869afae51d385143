import { Worker } from 'node:worker_threads';
import type { Logger } from '../../shared/logger.js';
import type { ThreadRequest, ThreadResponse, ThreadTensor } from './thread-protocol.js';

/** Options of InferenceThread. */
export interface InferenceThreadOptions {
  /** onnxruntime intra-op threads per session; default 1. */
  intraOpThreads?: number;
  logger: Logger;
}

/** Output tensors of one run and how long the run took. */
export interface RunResult {
  outputs: Record<string, ThreadTensor>;
  ms: number;
}

type Pending = { resolve: (r: ThreadResponse) => void; reject: (e: Error) => void };
type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;

/** onnxruntime sessions living on one worker thread, run one batch at a time. */
export class InferenceThread {
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | undefined;

  constructor(options: InferenceThreadOptions) {
    this.thread = new Worker(new URL('./inference-thread.js', import.meta.url), {
      workerData: { intraOpThreads: options.intraOpThreads ?? 1 },
    });
    this.thread.on('message', (msg: ThreadResponse) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      p?.resolve(msg);
    });
    this.thread.on('error', (err) => {
      options.logger.error({ err }, 'inference thread crashed');
      this.failAll(err);
    });
    this.thread.on('exit', (code) =>
      this.failAll(new Error(`inference thread exited with code ${code}`)),
    );
  }

  private failAll(err: Error): void {
    this.dead = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private async call(
    msg: Distribute<ThreadRequest>,
    transfer: ArrayBuffer[] = [],
  ): Promise<ThreadResponse> {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    const reply = new Promise<ThreadResponse>((resolve, reject) =>
      this.pending.set(id, { resolve, reject }),
    );
    this.thread.postMessage({ ...msg, id }, transfer);
    const res = await reply;
    if (res.type === 'error') throw new Error(res.message);
    return res;
  }

  /** Loads the ONNX file at `path` as session `key`. */
  async load(key: string, path: string): Promise<void> {
    await this.call({ type: 'load', key, path });
  }

  /** Releases session `key`. */
  async unload(key: string): Promise<void> {
    await this.call({ type: 'unload', key });
  }

  /** Runs session `key`; the feeds' buffers are transferred to the thread. */
  async run(key: string, feeds: Record<string, ThreadTensor>): Promise<RunResult> {
    const transfer = Object.values(feeds)
      .map((t) => t.data.buffer)
      .filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
    const res = await this.call({ type: 'run', key, feeds }, transfer);
    if (res.type !== 'result') throw new Error('unexpected reply from inference thread');
    return { outputs: res.outputs, ms: res.ms };
  }

  /** Stops the thread; pending runs fail. */
  async close(): Promise<void> {
    await this.thread.terminate();
  }
}
