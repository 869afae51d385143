/** The error catalogue of the public API: code -> HTTP status and default message. */
export const ERROR_CATALOGUE = {
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  unauthorized: { status: 401, message: 'A valid API key is required.' },
  model_not_found: { status: 404, message: 'No such model.' },
  version_not_found: { status: 404, message: 'No such model version.' },
  job_not_found: { status: 404, message: 'No such job, or it has expired.' },
  batch_not_found: { status: 404, message: 'No such batch, or it has expired.' },
  not_found: { status: 404, message: 'No such route.' },
  method_not_allowed: { status: 405, message: 'This method is not allowed on this route.' },
  job_not_cancellable: {
    status: 409,
    message: 'The job is active or has ended and cannot be cancelled.',
  },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  validation_error: { status: 422, message: 'The request is not valid.' },
  idempotency_key_reused: {
    status: 422,
    message: 'This Idempotency-Key was already used with a different request.',
  },
  rate_limited: { status: 429, message: 'Too many requests; retry later.' },
  queue_full: { status: 429, message: 'The queue is full; retry later.' },
  unavailable: { status: 503, message: 'The service is unavailable; retry later.' },
  internal_error: { status: 500, message: 'An internal error occurred.' },
  model_output_invalid: { status: 500, message: 'The model produced non-finite output.' },
  inference_failed: { status: 500, message: 'Inference failed.' },
} as const satisfies Record<string, { status: number; message: string }>;

/** A code of the error catalogue. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** One detail of a validation error: where and what. */
export interface ErrorDetail {
  path?: string;
  line?: number;
  message: string;
}

/** An error with a public code, rendered by the API's error handler. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: ErrorDetail[],
    /** Seconds for a Retry-After header. */
    readonly retryAfterS?: number,
  ) {
    super(message ?? ERROR_CATALOGUE[code].message);
    this.name = 'ApiError';
    this.status = ERROR_CATALOGUE[code].status;
  }
}

/** The error body of the own API. */
export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

/** Builds the public error body for an ApiError. */
export function errorBody(err: ApiError): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.details && err.details.length > 0 ? { details: err.details } : {}),
    },
  };
}

/** A failure stored with a job: public code and message. */
export interface JobFailure {
  code: string;
  message: string;
}

/**
 * Job failures travel through BullMQ's failedReason string as "code: message";
 * this reads one back.
 */
export function parseFailure(reason: string | undefined): JobFailure {
  const m = /^([a-z_]+): (.*)$/s.exec(reason ?? '');
  if (m?.[1] && m[2] !== undefined) return { code: m[1], message: m[2] };
  return { code: 'inference_failed', message: reason || ERROR_CATALOGUE.inference_failed.message };
}

/** Encodes a job failure for BullMQ's failedReason. */
export function formatFailure(code: ErrorCode, message: string): string {
  return `${code}: ${message}`;
}
