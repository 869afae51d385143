import * as ort from 'onnxruntime-node';
import type { RunResult } from './sessions.js';
import type { ThreadTensor } from './thread-protocol.js';

/**
 * A model's session on the worker's main thread, for small runs. A run of a few rows of a
 * tabular model takes tens of microseconds; handing it to the inference thread and back costs
 * two thread wake-ups and more than the run itself. session.run() blocks the thread it runs on
 * (microsoft/onnxruntime#19611), so only small runs come here; large ones go to the thread.
 */
export class InlineSession {
  private readonly running = new Set<Promise<unknown>>();
  private released = false;

  private constructor(private readonly session: ort.InferenceSession) {}

  /** Loads the ONNX file at `path` with the inference thread's session options. */
  static async create(path: string): Promise<InlineSession> {
    const session = await ort.InferenceSession.create(path, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new InlineSession(session);
  }

  /** Runs `feeds`; outputs in the inference thread's shape. */
  async run(feeds: Record<string, ThreadTensor>): Promise<RunResult> {
    if (this.released) throw new Error('the session was released');
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    }
    const started = performance.now();
    const run = this.session.run(inputs);
    this.running.add(run);
    try {
      const outputs = await run;
      const ms = performance.now() - started;
      const out: Record<string, ThreadTensor> = {};
      for (const [name, tensor] of Object.entries(outputs)) {
        out[name] = {
          type: tensor.type,
          data: tensor.data as ThreadTensor['data'],
          dims: [...tensor.dims],
        };
      }
      return { outputs: out, ms };
    } finally {
      this.running.delete(run);
    }
  }

  /** Releases the session once the runs under way have ended. */
  async release(): Promise<void> {
    this.released = true;
    await Promise.allSettled([...this.running]);
    await this.session.release();
  }
}
