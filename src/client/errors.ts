import type { ErrorDetail } from './types.js';

/** Fields of an InferqError besides its message. */
export interface InferqErrorInit {
  /** HTTP status, or 0 when no answer came (connection failure, timeout). */
  status: number;
  /** The API's error code (`validation_error`, `model_not_found`, ...) or a client-side one. */
  code: string;
  details?: ErrorDetail[];
  /** Seconds the server asked to wait before retrying (`Retry-After`). */
  retryAfter?: number;
  /** The `X-Request-Id` of the failed request, for the server's logs. */
  requestId?: string;
  cause?: unknown;
}

/** Every failure of the inferq client: an error answer of the server or no answer at all. */
export class InferqError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details?: ErrorDetail[];
  readonly retryAfter?: number;
  readonly requestId?: string;

  constructor(message: string, init: InferqErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'InferqError';
    this.status = init.status;
    this.code = init.code;
    if (init.details) this.details = init.details;
    if (init.retryAfter !== undefined) this.retryAfter = init.retryAfter;
    if (init.requestId) this.requestId = init.requestId;
  }

  /** Whether the server could not be reached at all (as opposed to answering with an error). */
  get unreachable(): boolean {
    return this.status === 0 && this.code === 'unavailable';
  }
}

// /v2 errors carry only a message; these codes keep `code` meaningful there.
const STATUS_CODES: Record<number, string> = {
  400: 'invalid_request',
  401: 'unauthorized',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'validation_error',
  429: 'rate_limited',
  503: 'unavailable',
};

function codeForStatus(status: number): string {
  return STATUS_CODES[status] ?? (status >= 500 ? 'internal_error' : `http_${status}`);
}

function retryAfterOf(res: Response): number | undefined {
  const header = res.headers.get('retry-after');
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

interface ParsedBody {
  code?: string;
  message?: string;
  details?: ErrorDetail[];
}

function parseErrorBody(text: string): ParsedBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { message: text.trim().slice(0, 500) || undefined };
  }
  const error = (body as { error?: unknown } | null)?.error;
  if (typeof error === 'string') return { message: error };
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; message?: unknown; details?: unknown };
    return {
      code: typeof e.code === 'string' ? e.code : undefined,
      message: typeof e.message === 'string' ? e.message : undefined,
      details: Array.isArray(e.details) ? (e.details as ErrorDetail[]) : undefined,
    };
  }
  return {};
}

/** Builds the InferqError of a non-2xx answer, reading its envelope (own API or /v2 form). */
export async function errorFromResponse(res: Response): Promise<InferqError> {
  const text = await res.text().catch(() => '');
  const parsed = parseErrorBody(text);
  return new InferqError(parsed.message ?? `The server answered ${res.status} ${res.statusText}.`, {
    status: res.status,
    code: parsed.code ?? codeForStatus(res.status),
    details: parsed.details,
    retryAfter: retryAfterOf(res),
    requestId: res.headers.get('x-request-id') ?? undefined,
  });
}

function describeCause(err: unknown): string {
  // undici wraps the socket error: TypeError('fetch failed') with cause ECONNREFUSED etc.
  const cause = (err as { cause?: unknown } | null)?.cause ?? err;
  const code = (cause as { code?: unknown } | null)?.code;
  const message = cause instanceof Error ? cause.message : String(cause);
  if (typeof code === 'string' && !message.includes(code)) return `${code} ${message}`;
  return message;
}

/** The InferqError of a request that got no answer. */
export function connectionError(url: string, err: unknown): InferqError {
  return new InferqError(`cannot reach the inferq server at ${url}: ${describeCause(err)}`, {
    status: 0,
    code: 'unavailable',
    cause: err,
  });
}

/** The InferqError of a request that took longer than its timeout. */
export function timeoutError(url: string, timeoutMs: number): InferqError {
  return new InferqError(`the inferq server at ${url} did not answer within ${timeoutMs} ms`, {
    status: 0,
    code: 'timeout',
  });
}
