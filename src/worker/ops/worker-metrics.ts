import type { Job } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ModelVersion } from '../../shared/model-repository.js';

type ModelLabels = 'model' | 'version';

/** What metrics read of any job's data: predictions and batch chunks both name their model. */
interface ModelJobData {
  model?: unknown;
  version?: unknown;
}

// Job data comes from Redis: never trust it to be well formed.
function modelLabels(job: Pick<Job<ModelJobData>, 'data'>): Record<ModelLabels, string> {
  const text = (v: unknown) => (typeof v === 'string' ? v : 'unknown');
  return { model: text(job.data?.model), version: text(job.data?.version) };
}

/** Inference run time buckets, seconds: 50 µs .. 10 s. */
const INFER_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
  10,
];
/** Queue wait buckets, seconds: 1 ms .. 5 min. */
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Batch size buckets: powers of two, 1 .. 1024. */
const BATCH_BUCKETS = Array.from({ length: 11 }, (_, i) => 2 ** i);

/** A worker's Prometheus metrics (Triton's nv_inference_* counterparts), on their own registry. */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly inferDuration: Histogram<ModelLabels>;
  private readonly batchSize: Histogram<ModelLabels>;
  private readonly rows: Counter<ModelLabels>;
  private readonly jobs: Counter<ModelLabels | 'status'>;
  private readonly retries: Counter<ModelLabels>;
  private readonly queueWait: Histogram<ModelLabels>;
  private readonly loadFailures: Counter<ModelLabels>;

  constructor(loadedModels: () => string[]) {
    const registers = [this.registry];
    const labelNames = ['model', 'version'] as const;
    collectDefaultMetrics({ register: this.registry });
    this.inferDuration = new Histogram({
      name: 'inferq_inference_duration_seconds',
      help: 'Time of one inference run (one micro-batch) on the onnxruntime thread, seconds.',
      labelNames,
      buckets: INFER_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'inferq_batch_size',
      help: 'Instances per inference run.',
      labelNames,
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.rows = new Counter({
      name: 'inferq_inference_rows_total',
      help: 'Instances run through a model.',
      labelNames,
      registers,
    });
    this.jobs = new Counter({
      name: 'inferq_jobs_total',
      help: 'Jobs finished by this worker, by model, version and status (completed or failed).',
      labelNames: [...labelNames, 'status'],
      registers,
    });
    this.retries = new Counter({
      name: 'inferq_job_retries_total',
      help: 'Job attempts that failed and will be retried.',
      labelNames,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'inferq_job_queue_wait_seconds',
      help: 'Time a job waited in the queue before this worker took it, seconds.',
      labelNames,
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.loadFailures = new Counter({
      name: 'inferq_model_load_failures_total',
      help: 'Model versions that failed to load into onnxruntime.',
      labelNames,
      registers,
    });
    new Gauge({
      name: 'inferq_models_loaded',
      help: 'Model versions loaded by this worker (1 per loaded version).',
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const key of loadedModels()) {
          const at = key.lastIndexOf('@');
          this.set({ model: key.slice(0, at), version: key.slice(at + 1) }, 1);
        }
      },
    });
  }

  /** Records one inference run of `rows` instances that took `ms`. */
  batch(model: ModelVersion, rows: number, ms: number): void {
    const labels = { model: model.name, version: model.version };
    this.inferDuration.observe(labels, ms / 1000);
    this.batchSize.observe(labels, rows);
    this.rows.inc(labels, rows);
  }

  // Each model version's children of the per-job metrics: prom-client hashes a label object on
  // every call, which every finished job would pay twice.
  private readonly completedOf = new Map<
    string,
    { count: Counter.Internal; wait: Histogram.Internal<ModelLabels> }
  >();

  /** Records a completed job (a prediction or a batch chunk). */
  completed(job: Pick<Job<ModelJobData>, 'data' | 'processedOn' | 'timestamp'>): void {
    const labels = modelLabels(job);
    const key = `${labels.model}@${labels.version}`;
    let children = this.completedOf.get(key);
    if (!children) {
      children = {
        count: this.jobs.labels({ ...labels, status: 'completed' }),
        wait: this.queueWait.labels(labels),
      };
      this.completedOf.set(key, children);
    }
    children.count.inc();
    // From the job's own timestamps: every job kind has them, whatever it returns.
    const waitMs = (job.processedOn ?? job.timestamp) - job.timestamp;
    children.wait.observe(Math.max(0, waitMs) / 1000);
  }

  /** Records a failed attempt: a final failure, or one BullMQ will retry. */
  failed(job: Job<ModelJobData>): void {
    const labels = modelLabels(job);
    // BullMQ sets finishedOn only when the job will not be retried.
    if (job.finishedOn) this.jobs.inc({ ...labels, status: 'failed' });
    else this.retries.inc(labels);
  }

  /** Records a model version that failed to load. */
  loadFailed(model: ModelVersion): void {
    this.loadFailures.inc({ model: model.name, version: model.version });
  }
}
