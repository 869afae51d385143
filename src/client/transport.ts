import { connectionError, errorFromResponse, InferqError, timeoutError } from './errors.js';

/** How an InferqClient reaches the server. */
export interface ClientOptions {
  /** Base URL of the inferq API, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** API key, sent as `Authorization: Bearer <key>` (needed when the server sets `API_KEYS`). */
  apiKey?: string;
  /** The fetch implementation; default the global `fetch` of Node 20+. */
  fetch?: typeof fetch;
  /** Longest wait for an answer in ms, on top of any long-poll wait asked for; default 60000. */
  timeoutMs?: number;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Aborts the request (and the stream it returns). */
  signal?: AbortSignal;
}

/** One HTTP request of the client. */
export interface RequestSpec extends CallOptions {
  method?: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string | undefined>;
  /** A JSON body. */
  json?: unknown;
  /** A streamed body (sent with `duplex: 'half'`) and its media type. */
  stream?: { body: ReadableStream<Uint8Array>; contentType: string };
  /** Milliseconds added to the timeout, for long-polls. */
  extraTimeoutMs?: number;
  /** No timeout at all: for uploads whose answer comes only after the whole body was read. */
  noTimeout?: boolean;
  /** Non-2xx statuses whose body is an answer rather than an error (e.g. 503 of readiness). */
  accept?: number[];
}

/** A request whose answer's headers have come. */
export interface OpenCall {
  res: Response;
  /** Stops the timeout timer, leaving the caller's signal in charge of the body. */
  stopTimer: () => void;
  /** Stops the timer and lets go of the caller's signal: call it once the body is read. */
  finish: () => void;
  /** Maps an error thrown while reading the body. */
  fail: (err: unknown) => unknown;
}

/** Sends requests: base URL, auth, timeouts, and errors turned into InferqError. */
export class Transport {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.url.replace(/\/+$/, '');
    const impl = options.fetch ?? fetch;
    this.fetchImpl = (input, init) => impl(input, init);
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** Sends the request and parses a JSON answer. */
  async json<T>(spec: RequestSpec): Promise<T> {
    const call = await this.open(spec);
    try {
      return (await call.res.json()) as T;
    } catch (err) {
      throw call.fail(err);
    } finally {
      call.finish();
    }
  }

  /** Sends the request and returns the answer's text. */
  async text(spec: RequestSpec): Promise<string> {
    const call = await this.open(spec);
    try {
      return await call.res.text();
    } catch (err) {
      throw call.fail(err);
    } finally {
      call.finish();
    }
  }

  /**
   * Sends the request and returns once the answer's headers came; the body is not timed, but
   * the caller's signal still aborts it. Call `finish()` after reading the body.
   */
  async stream(spec: RequestSpec): Promise<OpenCall> {
    const call = await this.open(spec);
    call.stopTimer();
    return call;
  }

  /** Sends the request; resolves once the headers of a successful answer arrived. */
  async open(spec: RequestSpec): Promise<OpenCall> {
    const controller = new AbortController();
    const timeoutMs = this.timeoutMs + (spec.extraTimeoutMs ?? 0);
    let timedOut = false;
    const timer = spec.noTimeout
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs);
    const onAbort = () => controller.abort(spec.signal?.reason);
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const stopTimer = () => clearTimeout(timer);
    const finish = () => {
      stopTimer();
      spec.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown): unknown => {
      if (err instanceof InferqError) return err;
      if (timedOut) return timeoutError(this.baseUrl, timeoutMs);
      if (spec.signal?.aborted) return spec.signal.reason ?? err;
      return connectionError(this.baseUrl, err);
    };
    if (spec.signal?.aborted) onAbort();
    let res: Response;
    try {
      res = await this.fetchImpl(this.url(spec), this.init(spec, controller.signal));
    } catch (err) {
      finish();
      throw fail(err);
    }
    if (!res.ok && !spec.accept?.includes(res.status)) {
      const error = await errorFromResponse(res).catch((err: unknown) => fail(err));
      finish();
      throw error;
    }
    return { res, stopTimer, finish, fail };
  }

  private url(spec: RequestSpec): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) params.set(name, String(value));
    }
    const query = params.toString();
    return `${this.baseUrl}${spec.path}${query ? `?${query}` : ''}`;
  }

  private init(spec: RequestSpec, signal: AbortSignal): RequestInit {
    const headers: Record<string, string> = { accept: 'application/json', ...this.options.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    for (const [name, value] of Object.entries(spec.headers ?? {})) {
      if (value !== undefined) headers[name.toLowerCase()] = value;
    }
    const init: RequestInit = { method: spec.method ?? 'GET', headers, signal };
    if (spec.json !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(spec.json);
    } else if (spec.stream) {
      headers['content-type'] = spec.stream.contentType;
      init.body = spec.stream.body;
      // Node's fetch refuses a stream body without it; the answer may come before the upload ends.
      init.duplex = 'half';
      // Otherwise fetch clones the request (the Fetch standard's HTTP-network-or-cache fetch)
      // and tees its body: the unread branch would keep every byte uploaded until the end.
      init.redirect = 'error';
      init.window = null;
    }
    return init;
  }
}

/** Encodes a path segment (model names, versions, ids). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}
