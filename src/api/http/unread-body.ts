import type { Context, Env, Input } from 'hono';
import { headerOf, incomingOf } from './node-request.js';

/** How long an answer to an unread body waits for the client to finish sending it, ms. */
const LINGER_MS = 2000;
/** Most bytes of an unread body read and dropped before the connection is closed anyway. */
const LINGER_MAX_BYTES = 64 * 1024 * 1024;

// Statuses whose answer has no body, so nothing to hold the connection open with.
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

// Bodies a limit wrapped: their source is what is left to drain once the wrapper gave up.
const sources = new WeakMap<Request, ReadableStream<Uint8Array>>();

/** Records `source` as the stream under `request`'s body, to drain it if it is left unread. */
export function keepForDrain(request: Request, source: ReadableStream<Uint8Array>): void {
  sources.set(request, source);
}

/**
 * Whether the request sent a body that was not read to its end: an answer before or while
 * reading it (a refusal). GET and HEAD bodies are dropped by Node itself.
 */
export function bodyUnread<E extends Env, I extends Input>(c: Context<E, string, I>): boolean {
  const incoming = incomingOf(c);
  if (!incoming || incoming.readableEnded) return false;
  if (c.req.method === 'GET' || c.req.method === 'HEAD') return false;
  if (headerOf(c, 'transfer-encoding') !== undefined) return true;
  const length = headerOf(c, 'content-length');
  return length !== undefined && length !== '0';
}

// Reads and drops what is left of a body until it ends, LINGER_MAX_BYTES or LINGER_MS.
async function drain(body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), LINGER_MS);
  });
  try {
    while (bytes <= LINGER_MAX_BYTES) {
      const next = await Promise.race([reader.read(), expired]);
      if (!next || next.done) return;
      bytes += next.value.byteLength;
    }
  } catch {
    // The client went away: nothing left to wait for.
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

/**
 * The answer to a request whose body was not read to its end, made safe for keep-alive
 * clients. @hono/node-server would drain such a body for at most 500 ms, stall behind a reader
 * left attached, then destroy the socket with the client's next request on it; closing right
 * after the answer makes the kernel reset a client still sending, which can lose the answer.
 * So the answer goes out at once, whole (Content-Length), with `Connection: close`, and the
 * connection closes once the client has sent the rest of its body (bounded in time and bytes),
 * as HTTP servers' "lingering close" does.
 */
export async function closeAfterBody<E extends Env, I extends Input>(
  c: Context<E, string, I>,
): Promise<Response> {
  const answer = c.res;
  if (NULL_BODY_STATUSES.has(answer.status)) {
    c.header('Connection', 'close');
    return c.res;
  }
  const bytes = new Uint8Array(await answer.arrayBuffer());
  const headers = new Headers(answer.headers);
  headers.set('Connection', 'close');
  headers.set('Content-Length', String(bytes.byteLength));
  // The stream under a limit's wrapper when it is free, else the wrapper itself (whose reader
  // holds the stream under it once pulled): either way the rest of the body is read and dropped.
  const source = [sources.get(c.req.raw), c.req.raw.body as ReadableStream<Uint8Array> | null].find(
    (s) => s && !s.locked,
  );
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      if (source) await drain(source);
      controller.close();
    },
  });
  return new Response(body, { status: answer.status, statusText: answer.statusText, headers });
}
