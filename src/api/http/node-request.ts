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
