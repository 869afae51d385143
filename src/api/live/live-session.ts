import { ApiError, ERROR_CATALOGUE, type JobFailure } from '../../shared/errors.js';
import type { LiveAnswer } from '../../shared/contracts/live.js';
import { partResult } from '../../shared/jobs.js';
import { parseOrThrow, toInput } from '../../shared/schemas.js';
import { LiveRequestSchema, refOf, type LiveRequest, type Ref } from '../../shared/ws-schemas.js';
import type { ApiDeps } from '../deps.js';
import { rateLimitedError } from '../http/rate-limit.js';
import type { Owner } from '../jobs/public-ids.js';
import type { RateDecision } from '../http/rate-limiter.js';
import {
  failureError,
  predictionBody,
  runPrediction,
  type PredictionBody,
} from '../predict/predict-service.js';

/** Most requests one socket may have in flight; more are answered with rate_limited. */
export const MAX_IN_FLIGHT = 1024;

// A socket's request re-checks its job this often while it runs (events are best-effort).
const FOLLOW_MS = 15_000;

/** An answer on the socket: a result, or why there is none (the contract's type). */
export type { LiveAnswer } from '../../shared/contracts/live.js';

function parseMessage(raw: unknown): { message?: unknown; error?: ApiError } {
  if (typeof raw !== 'string')
    return { error: new ApiError('invalid_json', 'Send each request as a JSON text message.') };
  try {
    return { message: JSON.parse(raw) as unknown };
  } catch (err) {
    const reason = (err as Error).message;
    return { error: new ApiError('invalid_json', `The message is not valid JSON: ${reason}.`) };
  }
}

/**
 * One WebSocket connection's requests: each message is validated and predicted through the
 * same pipeline as POST /predict, and answered when its result is ready, in any order.
 */
export class LiveSession {
  private inFlight = 0;
  private open = true;
  private seq = 0;
  private refusedUntil = 0;

  constructor(
    private readonly deps: ApiDeps,
    private readonly send: (answer: LiveAnswer) => void,
    /** Request id of the handshake; each message's job gets `<id>.<n>`. */
    private readonly requestId: string,
    /** Owner of the socket (its handshake's API key): every request on it is this owner's. */
    private readonly owner: Owner,
    /** Charges one message to the client's rate limit (RATE_LIMIT_RPS); absent = no limit. */
    private readonly charge?: () => Promise<RateDecision>,
  ) {}

  /** Number of requests still running. */
  get pending(): number {
    return this.inFlight;
  }

  /** Takes one message off the socket; never throws, every message gets one answer. */
  handle(raw: unknown): void {
    const { message, error } = parseMessage(raw);
    const ref = refOf(message);
    if (this.inFlight >= MAX_IN_FLIGHT) {
      return this.fail(
        ref,
        new ApiError(
          'rate_limited',
          `At most ${MAX_IN_FLIGHT} requests may be in flight on one socket.`,
        ),
      );
    }
    this.inFlight++;
    // Every message is charged, a malformed one too: none can be sent for free.
    void this.admit()
      .then(() => {
        if (error) throw error;
        return this.run(message);
      })
      .then((answer) => answer && this.send(answer))
      .catch((err: unknown) => this.fail(ref, err))
      .finally(() => this.inFlight--);
  }

  // GCRA refuses every request until its retry time: a flood past the limit costs no Redis call.
  private async admit(): Promise<void> {
    if (!this.charge) return;
    const waitMs = this.refusedUntil - Date.now();
    const decision = waitMs > 0 ? { allowed: false, retryAfterMs: waitMs } : await this.charge();
    if (decision.allowed) return;
    this.refusedUntil = Date.now() + decision.retryAfterMs;
    this.deps.metrics.rateLimited.inc();
    throw rateLimitedError(decision.retryAfterMs);
  }

  /** The socket closed: answers still running are dropped. */
  close(): void {
    this.open = false;
  }

  private async run(message: unknown): Promise<LiveAnswer | undefined> {
    const request = parseOrThrow(LiveRequestSchema, message);
    const body = await this.predict(request);
    if (!body) return undefined;
    const { id, ...rest } = body;
    return { ref: request.ref, id, status: 'completed', ...rest };
  }

  private async predict(request: LiveRequest): Promise<PredictionBody | undefined> {
    const { deps } = this;
    const model = deps.repository.resolve(request.model, request.version);
    const input = toInput(request, model.rowSize, deps.config.MAX_INSTANCES);
    const run = await runPrediction(deps, model, input, {
      waitMs: FOLLOW_MS,
      owner: this.owner,
      requestId: `${this.requestId}.${++this.seq}`,
    });
    if (run.status === 'completed') return run.body;
    while (this.open) {
      if (deps.isShuttingDown())
        throw new ApiError('unavailable', 'The server is shutting down; send again.', undefined, 1);
      const outcome = await deps.jobs.waitFor(run.ref, FOLLOW_MS);
      if (outcome?.state === 'completed') {
        const own =
          run.ref.part !== undefined ? partResult(outcome.result, run.ref.part) : outcome.result;
        if (!own || !('results' in own))
          throw failureError(own ?? { code: 'internal_error', message: 'no result' });
        return predictionBody(model, run.id, own, false, input.single);
      }
      if (outcome?.state === 'failed') throw failureError(outcome.failure);
      if (outcome?.state === 'cancelled')
        throw new ApiError('job_not_found', `Job "${run.id}" was cancelled.`);
    }
    return undefined;
  }

  private fail(ref: Ref | undefined, err: unknown): void {
    const error = this.publicError(err);
    this.send(ref === undefined ? { status: 'failed', error } : { ref, status: 'failed', error });
  }

  private publicError(err: unknown): JobFailure {
    if (err instanceof ApiError) return { code: err.code, message: err.message };
    if (this.deps.redis.status !== 'ready')
      return { code: 'unavailable', message: 'Redis is unreachable; retry shortly.' };
    this.deps.logger.error({ err, requestId: this.requestId }, 'unhandled error on a WebSocket');
    return { code: 'internal_error', message: ERROR_CATALOGUE.internal_error.message };
  }
}
