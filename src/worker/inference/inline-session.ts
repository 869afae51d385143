import type { InferenceSession } from 'onnxruntime-node';
import { createSession, runSession } from './ort-session.js';
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

  private constructor(private readonly session: InferenceSession) {}

  /** Loads the ONNX file at `path` with the inference thread's session options. */
  static async create(path: string): Promise<InlineSession> {
    return new InlineSession(await createSession(path, 1));
  }

  /** Runs `feeds`; outputs in the inference thread's shape. */
  async run(feeds: Record<string, ThreadTensor>): Promise<RunResult> {
    if (this.released) throw new Error('the session was released');
    const run = runSession(this.session, feeds);
    this.running.add(run);
    try {
      return await run;
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
