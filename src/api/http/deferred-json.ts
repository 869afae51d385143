import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { ApiError, errorBody } from '../../shared/errors.js';

/** @hono/node-server writes nothing for a response carrying this header: the handler does. */
const ALREADY_SENT = 'x-hono-already-sent';

/** What a deferred answer needs besides its value. */
export interface DeferredOptions {
  /** Whether the server is shutting down: the answer then closes its connection. */
  closing: () => boolean;
  /** Told of an answer that could not be written (then a 500 in the envelope is sent). */
  onError: (err: unknown) => void;
}

/**
 * Tells a waiting answer that its client went away. A waiting request holds one, so it is
 * lighter than an AbortController (with its signal, an EventTarget with two maps and a hidden
 * class of its own, about a kilobyte).
 */
export class Departure {
  /** Whether the client went away. */
  gone = false;
  private listener: (() => void) | undefined;

  /** Calls `listener` when the client goes away (at once when it has); one listener at a time. */
  onGone(listener: (() => void) | undefined): void {
    this.listener = listener;
    if (this.gone) listener?.();
  }

  /** The client went away. */
  leave(): void {
    if (this.gone) return;
    this.gone = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }
}

/**
 * Answers 200 with a JSON value that `produce` resolves later (a long-poll whose status is 200
 * whatever the wait brings). `produce` must not reject; it gets a Departure that tells it when
 * the client goes away.
 *
 * Served by @hono/node-server, the handler returns at once and the middleware chain completes;
 * the value is written to the Node response when it comes, with the headers the middlewares set
 * meanwhile. A waiting request then holds its socket, its Node request and response and the wait
 * itself, not the suspended frames of every middleware with their contexts (about 20 KB of heap
 * a request, which made 10,000 long-polls cost the API 300 MB). Without a Node response (the
 * app called in-process), the body is a stream that ends with the value.
 */
export function deferredJson(
  c: Context,
  produce: (departure: Departure) => Promise<unknown>,
  options: DeferredOptions,
): Response {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) return c.body(streamed(produce), 200, { 'content-type': 'application/json' });
  // Separate functions, so that no closure the wait keeps shares a scope that holds `c`.
  sendLater(outgoing, produce, headersOf(c), options);
  // Through c.body: the headers set before the handler ran (X-Request-Id) are kept.
  return c.body(null, 200, { [ALREADY_SENT]: '1', 'content-type': 'application/json' });
}

/**
 * The headers the middlewares set (some replace the response: c.res), copied once they all ran:
 * the wait then holds a few strings, not the context with its request and response.
 */
function headersOf(c: Context): Promise<OutgoingHttpHeaders> {
  return new Promise((resolve) =>
    setImmediate(() => {
      const headers: OutgoingHttpHeaders = {};
      c.res.headers.forEach((value, name) => {
        if (name !== ALREADY_SENT) headers[name] = value;
      });
      resolve(headers);
    }),
  );
}

function sendLater(
  outgoing: ServerResponse,
  produce: (departure: Departure) => Promise<unknown>,
  headersLater: Promise<OutgoingHttpHeaders>,
  { closing, onError }: DeferredOptions,
): void {
  const departure = new Departure();
  const onClose = () => departure.leave();
  outgoing.once('close', onClose);
  void Promise.all([produce(departure), headersLater])
    .then(([value, headers]) => {
      outgoing.off('close', onClose);
      if (departure.gone || outgoing.writableEnded || outgoing.headersSent) return;
      const body = Buffer.from(JSON.stringify(value));
      headers['content-length'] = body.length;
      if (closing()) headers.connection = 'close';
      outgoing.writeHead(200, headers);
      outgoing.end(body);
    })
    .catch((err: unknown) => {
      // Not expected (`produce` does not reject): answer 500 in the envelope, never a stack trace.
      onError(err);
      outgoing.off('close', onClose);
      if (outgoing.headersSent || outgoing.destroyed) return void outgoing.destroy();
      const body = JSON.stringify(errorBody(new ApiError('internal_error')));
      outgoing.writeHead(500, { 'content-type': 'application/json' });
      outgoing.end(body);
    });
}

/** The body of an answer served in-process (no Node response): a stream ending with the value. */
function streamed(produce: (departure: Departure) => Promise<unknown>): ReadableStream<Uint8Array> {
  const departure = new Departure();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const value = await produce(departure);
      if (departure.gone) return;
      controller.enqueue(new TextEncoder().encode(JSON.stringify(value)));
      controller.close();
    },
    cancel: () => departure.leave(),
  });
}
