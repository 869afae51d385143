import type { Logger } from '../../shared/logger.js';
import type { ModelRepository, ModelVersion } from '../../shared/model-repository.js';
import type { Datatype } from '../../shared/onnx-metadata.js';
import { stat } from 'node:fs/promises';
import { InlineSession } from './inline-session.js';
import { MicroBatcher } from './micro-batcher.js';
import type { InferenceThread, RunResult } from './sessions.js';
import type { ThreadTensor } from './thread-protocol.js';

/** Options of ModelPool. */
export interface ModelPoolOptions {
  thread: InferenceThread;
  logger: Logger;
  /** Default most instances per batch (MAX_BATCH_SIZE); model.json may lower or raise it. */
  maxBatchSize: number;
  /** Default batch window, milliseconds (MAX_BATCH_DELAY_MS). */
  maxBatchDelayMs: number;
  /** Called after every inference run, for metrics and tests. */
  onBatch?: (model: ModelVersion, rows: number, ms: number) => void;
  /** Runs of at most this many rows go to a session on this thread (INLINE_INFERENCE_ROWS). */
  inlineRows?: number;
}

// A model this large is not loaded twice: its small runs go to the inference thread too.
const INLINE_MAX_FILE_BYTES = 64 * 1024 * 1024;

/** A loaded model version and the batcher in front of its session. */
export interface LoadedModel {
  model: ModelVersion;
  batcher: MicroBatcher;
  /** The session of small runs on this thread, when there is one. */
  inline?: InlineSession;
}

function castInput(
  datatype: Datatype,
  values: Float32Array,
): { type: string; data: ThreadTensor['data'] } {
  switch (datatype) {
    case 'FP32':
      return { type: 'float32', data: values };
    case 'FP64':
      return { type: 'float64', data: Float64Array.from(values) };
    case 'INT32':
      return { type: 'int32', data: Int32Array.from(values, Math.round) };
    case 'INT64':
      return { type: 'int64', data: BigInt64Array.from(values, (v) => BigInt(Math.round(v))) };
    default:
      throw new Error(`input datatype ${datatype} is not supported for tabular predictions`);
  }
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** Key of a model version: `name@version`. */
export const modelKey = (name: string, version: string): string => `${name}@${version}`;

/** The served model versions, loaded into the inference thread, each behind its own batcher. */
export class ModelPool {
  private readonly loaded = new Map<string, LoadedModel>();

  constructor(private readonly options: ModelPoolOptions) {}

  /**
   * Loads every served version of the repository; a version that fails to load is skipped.
   * Throws when nothing at all could be loaded: a worker serving no model only fails jobs.
   */
  async loadAll(repository: ModelRepository): Promise<void> {
    const served = repository.served();
    for (const model of served) {
      try {
        await this.load(model);
      } catch (err) {
        this.options.logger.error(
          { err, model: model.name, version: model.version },
          'model failed to load',
        );
      }
    }
    if (this.loaded.size === 0) {
      throw new Error(`no model could be loaded (${served.length} served versions found)`);
    }
  }

  /**
   * Loads one version into the inference thread, and for small runs into this thread too
   * (unless INLINE_INFERENCE_ROWS is 0 or the model is large).
   */
  async load(model: ModelVersion): Promise<void> {
    const key = modelKey(model.name, model.version);
    const inlineRows = this.options.inlineRows ?? 0;
    const small = inlineRows > 0 && (await fileSize(model.onnxPath)) <= INLINE_MAX_FILE_BYTES;
    const [onThread, inlined] = await Promise.allSettled([
      this.options.thread.load(key, model.onnxPath),
      small ? InlineSession.create(model.onnxPath) : Promise.resolve(undefined),
    ]);
    const inline = inlined.status === 'fulfilled' ? inlined.value : undefined;
    if (onThread.status === 'rejected') {
      await inline?.release();
      throw onThread.reason;
    }
    // Small runs then go to the inference thread like the others.
    if (inlined.status === 'rejected') {
      this.options.logger.warn(
        { err: inlined.reason, model: key },
        'no session on the main thread',
      );
    }
    const input = model.inputs[0];
    if (!input) throw new Error(`${key} has no input`);
    const batcher = new MicroBatcher({
      maxBatchSize: model.batching?.maxBatchSize ?? this.options.maxBatchSize,
      maxBatchDelayMs: model.batching?.maxBatchDelayMs ?? this.options.maxBatchDelayMs,
      runWhenIdle: model.batching?.runWhenIdle ?? true,
      rowSize: Math.max(model.rowSize, 1),
      run: (rows, values) => {
        const dims = [rows, ...input.shape.slice(1)];
        const feeds = { [input.name]: { ...castInput(input.datatype, values), dims } };
        if (inline && rows <= inlineRows) return inline.run(feeds);
        return this.options.thread.run(key, feeds);
      },
      onBatch: (rows, ms) => this.options.onBatch?.(model, rows, ms),
    });
    this.loaded.set(key, { model, batcher, inline });
    this.options.logger.info({ model: model.name, version: model.version }, 'model loaded');
  }

  /** A loaded version, or undefined. */
  get(name: string, version: string): LoadedModel | undefined {
    return this.loaded.get(modelKey(name, version));
  }

  /** Runs `feeds` through a loaded version's session in one run of its own, outside its batcher. */
  async runDirect(model: ModelVersion, feeds: Record<string, ThreadTensor>): Promise<RunResult> {
    const key = modelKey(model.name, model.version);
    if (!this.loaded.has(key)) throw new Error(`${key} is not loaded`);
    const rows = Object.values(feeds)[0]?.dims[0] ?? 1;
    const run = await this.options.thread.run(key, feeds);
    this.options.onBatch?.(model, rows, run.ms);
    return run;
  }

  /** Keys of every loaded version. */
  keys(): string[] {
    return [...this.loaded.keys()];
  }

  /**
   * Stops serving a version: new jobs for it no longer find it, what its batcher holds runs
   * first (the thread handles messages in order), then the session is released.
   */
  async unload(name: string, version: string): Promise<void> {
    const key = modelKey(name, version);
    const loaded = this.loaded.get(key);
    if (!loaded) return;
    this.loaded.delete(key);
    loaded.batcher.flush();
    await Promise.all([this.options.thread.unload(key), loaded.inline?.release()]);
    this.options.logger.info({ model: name, version }, 'model unloaded');
  }
}
