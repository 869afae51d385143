import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

/** The Node request under @hono/node-server; undefined for in-process requests. */
export function incomingOf(c: { env: unknown }): IncomingMessage | undefined {
  const env = c.env as { incoming?: IncomingMessage } | undefined;
  return env?.incoming;
}

/**
 * A request header, read from Node's request under @hono/node-server: `c.req.header` would
 * build a web Headers of the whole request for one lookup. `name` is lower case.
 */
export function headerOf(c: Context, name: string): string | undefined {
  const incoming = incomingOf(c);
  if (!incoming) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * The bytes of the request body as they arrive, let go of without destroying the connection
 * when the reader stops early (the answer must still go out, and the rest of the body is
 * drained). Read from Node's request under @hono/node-server: its web stream copied every
 * network chunk (a quarter of a gigabyte for a 1M-row batch upload) through a web-stream queue.
 */
export function requestBytes(c: Context): AsyncIterable<Uint8Array> {
  const incoming = incomingOf(c);
  if (incoming)
    return { [Symbol.asyncIterator]: () => incoming.iterator({ destroyOnReturn: false }) };
  const body = c.req.raw.body;
  const stream = body ?? new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
  return { [Symbol.asyncIterator]: () => stream.values({ preventCancel: true }) };
}
