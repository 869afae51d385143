import {
  MAX_JSON_BATCH_ITEMS,
  type BatchOptions,
  type BatchSource,
  type PredictOptions,
  type SubmitJobOptions,
  type WaitOptions,
} from './options.js';
import { readLineBlocks, readLines, readNdjson, readServerEvents, uploadBody } from './streams.js';
import {
  seg,
  Transport,
  type CallOptions,
  type ClientOptions,
  type RequestSpec,
} from './transport.js';
import type {
  AcceptedJob,
  BatchAccepted,
  BatchPrediction,
  BatchResultLine,
  BatchEvent,
  BatchView,
  HealthReady,
  JobEvent,
  JobView,
  ModelList,
  ModelMetadata,
  PredictInput,
  PredictResponse,
  ServerEvent,
  SinglePrediction,
} from './types.js';
import { V2Client } from './v2.js';

function predictBody(input: PredictInput): object {
  if (!Array.isArray(input)) return input;
  return Array.isArray(input[0]) ? { instances: input } : { features: input };
}

function waitHeader(wait: number | undefined): Record<string, string | undefined> {
  return { prefer: wait === undefined ? undefined : `wait=${wait}` };
}

async function* nonBlank(lines: AsyncGenerator<string>): AsyncGenerator<string> {
  for await (const line of lines) if (line.trim() !== '') yield line;
}

/** A typed client for every route of the inferq API. */
export class InferqClient {
  /** The Open Inference Protocol routes (`/v2`). */
  readonly v2: V2Client;
  /** Liveness and readiness of the inferq API. */
  readonly health: {
    live(options?: CallOptions): Promise<{ status: 'ok' }>;
    ready(options?: CallOptions): Promise<HealthReady>;
  };
  private readonly http: Transport;

  constructor(options: ClientOptions) {
    this.http = new Transport(options);
    this.v2 = new V2Client(this.http);
    this.health = {
      live: (o = {}) => this.http.json({ path: '/health/live', ...o }),
      ready: (o = {}) => this.http.json({ path: '/health/ready', accept: [503], ...o }),
    };
  }

  /** Base URL of the server, without a trailing slash. */
  get url(): string {
    return this.http.baseUrl;
  }

  /** GET /v1/models. */
  listModels(options: CallOptions = {}): Promise<ModelList> {
    return this.http.json({ path: '/v1/models', ...options });
  }

  /** GET /v1/models/{model} (the default version) or /v1/models/{model}/versions/{version}. */
  getModel(model: string, version?: string, options: CallOptions = {}): Promise<ModelMetadata> {
    const path = version
      ? `/v1/models/${seg(model)}/versions/${seg(version)}`
      : `/v1/models/${seg(model)}`;
    return this.http.json({ path, ...options });
  }

  /** POST /v1/models/{model}/predict: the result, or a 202 job when it was not done in time. */
  predict(
    model: string,
    input: number[] | { features: number[] },
    options?: PredictOptions,
  ): Promise<SinglePrediction | AcceptedJob>;
  predict(
    model: string,
    input: number[][] | { instances: number[][] },
    options?: PredictOptions,
  ): Promise<BatchPrediction | AcceptedJob>;
  predict(model: string, input: PredictInput, options?: PredictOptions): Promise<PredictResponse>;
  predict(model: string, input: PredictInput, options: PredictOptions = {}) {
    const { version, wait, async, signal } = options;
    return this.http.json<PredictResponse>({
      method: 'POST',
      path: `/v1/models/${seg(model)}/predict`,
      query: { version },
      headers: {
        prefer: async ? 'respond-async' : wait === undefined ? undefined : `wait=${wait}`,
      },
      json: predictBody(input),
      extraTimeoutMs: (wait ?? 0) * 1000,
      signal,
    });
  }

  /** POST /v1/jobs: queues a prediction and answers at once. */
  submitJob(model: string, input: PredictInput, options: SubmitJobOptions = {}) {
    const { version, priority, idempotencyKey, signal } = options;
    return this.http.json<AcceptedJob>({
      method: 'POST',
      path: '/v1/jobs',
      headers: { 'idempotency-key': idempotencyKey },
      json: { model, version, priority, ...predictBody(input) },
      signal,
    });
  }

  /** GET /v1/jobs/{id}; with `wait` it long-polls until the job ends or the wait runs out. */
  getJob(id: string, options: WaitOptions = {}): Promise<JobView> {
    return this.http.json({
      path: `/v1/jobs/${seg(id)}`,
      headers: waitHeader(options.wait),
      extraTimeoutMs: (options.wait ?? 0) * 1000,
      signal: options.signal,
    });
  }

  /** Long-polls a job until it has ended (completed, failed or cancelled). */
  async waitForJob(id: string, options: CallOptions & { pollS?: number } = {}): Promise<JobView> {
    for (;;) {
      const job = await this.getJob(id, { wait: options.pollS ?? 30, signal: options.signal });
      if (job.status !== 'queued' && job.status !== 'active') return job;
    }
  }

  /** DELETE /v1/jobs/{id}: cancels a queued job (409 `job_not_cancellable` otherwise). */
  async cancelJob(id: string, options: CallOptions = {}): Promise<void> {
    await this.http.text({ method: 'DELETE', path: `/v1/jobs/${seg(id)}`, ...options });
  }

  /** GET /v1/jobs/{id}/events: `status` events, then one `result` or `error` event. */
  jobEvents(id: string, options: CallOptions = {}): AsyncGenerator<JobEvent> {
    return this.events<JobEvent>(`/v1/jobs/${seg(id)}/events`, options);
  }

  /** POST /v1/batches: a JSON body for small lists, else a streamed NDJSON upload. */
  async createBatch(
    model: string,
    source: BatchSource,
    options: BatchOptions = {},
  ): Promise<BatchAccepted> {
    const { version, priority, signal } = options;
    if (Array.isArray(source) && source.length <= MAX_JSON_BATCH_ITEMS) {
      return this.http.json({
        method: 'POST',
        path: '/v1/batches',
        json: { model, version, priority, items: source },
        signal,
      });
    }
    const body = uploadBody('ndjson' in source ? { bytes: source.ndjson } : { items: source });
    try {
      return await this.http.json({
        method: 'POST',
        path: '/v1/batches',
        query: { model, version, priority },
        stream: { body: body.stream, contentType: 'application/x-ndjson' },
        noTimeout: true,
        signal,
      });
    } catch (err) {
      throw body.sourceError() ?? err;
    }
  }

  /** GET /v1/batches/{id}: progress; with `wait` it long-polls. */
  getBatch(id: string, options: WaitOptions = {}): Promise<BatchView> {
    return this.http.json({
      path: `/v1/batches/${seg(id)}`,
      headers: waitHeader(options.wait),
      extraTimeoutMs: (options.wait ?? 0) * 1000,
      signal: options.signal,
    });
  }

  /** GET /v1/batches/{id}/results: one line per item in submission order, streamed as they end. */
  batchResults(id: string, options: CallOptions = {}): AsyncGenerator<BatchResultLine> {
    const spec = {
      path: `/v1/batches/${seg(id)}/results`,
      headers: { accept: 'application/x-ndjson' },
      ...options,
    };
    return this.streamed(spec, (body) => readNdjson<BatchResultLine>(body));
  }

  /**
   * The lines of GET /v1/batches/{id}/results as the server sent them (JSON text, blank lines
   * left out): for copying results somewhere without parsing and serialising each one.
   */
  batchResultLines(id: string, options: CallOptions = {}): AsyncGenerator<string> {
    const spec = {
      path: `/v1/batches/${seg(id)}/results`,
      headers: { accept: 'application/x-ndjson' },
      ...options,
    };
    return this.streamed(spec, (body) => nonBlank(readLines(body)));
  }

  /**
   * The bytes of GET /v1/batches/{id}/results as the server sent them, in blocks of whole lines:
   * for copying results to a file without decoding a million lines.
   */
  batchResultBlocks(id: string, options: CallOptions = {}): AsyncGenerator<Uint8Array> {
    const spec = {
      path: `/v1/batches/${seg(id)}/results`,
      headers: { accept: 'application/x-ndjson' },
      ...options,
    };
    return this.streamed(spec, readLineBlocks);
  }

  /** GET /v1/batches/{id}/events: `progress` events, then `done` when every row has ended. */
  batchEvents(id: string, options: CallOptions = {}): AsyncGenerator<BatchEvent> {
    return this.events<BatchEvent>(`/v1/batches/${seg(id)}/events`, options);
  }

  /** DELETE /v1/batches/{id}: cancels the rows that have not started. */
  async cancelBatch(id: string, options: CallOptions = {}): Promise<void> {
    await this.http.text({ method: 'DELETE', path: `/v1/batches/${seg(id)}`, ...options });
  }

  /** GET /metrics: the Prometheus text exposition; `token` is the server's METRICS_TOKEN. */
  metrics(options: CallOptions & { token?: string } = {}): Promise<string> {
    const { token, ...call } = options;
    return this.http.text({
      path: '/metrics',
      headers: { accept: 'text/plain', authorization: token ? `Bearer ${token}` : undefined },
      ...call,
    });
  }

  private events<E extends ServerEvent>(path: string, options: CallOptions): AsyncGenerator<E> {
    const spec = { path, headers: { accept: 'text/event-stream' }, ...options };
    return this.streamed(spec, (body) => readServerEvents(body) as AsyncGenerator<E>);
  }

  // Errors while reading become InferqErrors; stopping early releases the connection.
  private async *streamed<T>(
    spec: RequestSpec,
    parse: (body: ReadableStream<Uint8Array>) => AsyncGenerator<T>,
  ): AsyncGenerator<T> {
    const call = await this.http.stream(spec);
    try {
      if (call.res.body) yield* parse(call.res.body);
    } catch (err) {
      throw call.fail(err);
    } finally {
      call.finish();
    }
  }
}
