import type { MiddlewareHandler, Next } from 'hono';
import { compress } from 'hono/compress';
import { headerOf } from './node-request.js';
import { respondedJson } from './request-frame.js';

// JSON and text answers are built in memory; NDJSON and SSE stream and must reach the client
// line by line, which a gzip stream would hold back until its buffer fills.
const BUFFERED =
  /^\s*(application\/(json|javascript)|[^;\s]+\+json|text\/(html|plain|css|javascript))\s*(;|$)/i;

/**
 * gzip (or deflate) for bodies of `thresholdBytes` and more, as the client's Accept-Encoding
 * allows. Streaming media types (NDJSON, SSE) are never compressed.
 */
export function compressLarge(thresholdBytes = 1024): MiddlewareHandler {
  const gzip = compress({
    threshold: thresholdBytes,
    contentTypeFilter: (type) => BUFFERED.test(type) || type.startsWith('image/svg'),
  });
  return (c, next) => {
    // Nothing to do unless the client takes gzip or deflate: skip the size measurement too.
    if (!/\b(gzip|deflate)\b/i.test(headerOf(c, 'accept-encoding') ?? '')) return next();
    return compressAfter(c, next, gzip, thresholdBytes);
  };
}

// Runs the route, then has hono's compress judge and compress its answer.
async function compressAfter(
  c: Parameters<MiddlewareHandler>[0],
  next: Next,
  gzip: MiddlewareHandler,
  thresholdBytes: number,
): Promise<void> {
  await next();
  // A small answer of respondJson (a prediction) is left as it is, unopened.
  const json = respondedJson(c);
  if (json !== undefined && Buffer.byteLength(json) < thresholdBytes) return;
  const type = c.res.headers.get('content-type') ?? '';
  // c.json() sets no Content-Length, which hides the size from the threshold: measure it.
  if (c.res.body && !c.res.headers.has('content-length') && BUFFERED.test(type)) {
    const bytes = await c.res.arrayBuffer();
    const res = new Response(bytes, c.res);
    res.headers.set('Content-Length', String(bytes.byteLength));
    c.res = res;
  }
  // The answer is final: hono's compress only judges and compresses it.
  await gzip(c, () => Promise.resolve());
}
