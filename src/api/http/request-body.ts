import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { ApiError } from '../../shared/errors.js';
import { headerOf, incomingOf } from './node-request.js';
import { keepForDrain } from './unread-body.js';

// A body with Content-Length and no Transfer-Encoding cannot be longer than declared: Node's
// parser stops there.
function declaredLength(c: Context): number | undefined {
  const length = headerOf(c, 'content-length');
  if (length === undefined || headerOf(c, 'transfer-encoding') !== undefined) return undefined;
  return /^\d+$/.test(length) ? Number(length) : undefined;
}

function tooLarge(maxBytes: number, setting = 'MAX_BODY_BYTES'): ApiError {
  return new ApiError(
    'payload_too_large',
    `The request body is larger than ${maxBytes} bytes (${setting}).`,
  );
}

/** Refuses a body whose Content-Length is over `maxBytes` (named `setting`) at once, unread. */
export function limitDeclared(c: Context, maxBytes: number, setting: string): void {
  const declared = declaredLength(c);
  if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes, setting);
}

// Pulls the body through a byte count: past `maxBytes` the reader is released, not cancelled
// (cancelling destroys the socket before the 413 is written), and the rest is left for
// closeAfterBody to drain once the answer is out.
function limitStream(c: Context, maxBytes: number): void {
  const source = c.req.raw.body as ReadableStream<Uint8Array> | null;
  if (!source) return;
  // Locked only once read: a body nobody reads stays free for closeAfterBody to drain.
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let size = 0;
  const limited = new ReadableStream<Uint8Array>({
    async pull(controller) {
      reader ??= source.getReader();
      const { done, value } = await reader.read();
      if (done) {
        reader.releaseLock();
        controller.close();
        return;
      }
      size += value.byteLength;
      if (size > maxBytes) {
        reader.releaseLock();
        controller.error(tooLarge(maxBytes));
        return;
      }
      controller.enqueue(value);
    },
    cancel() {
      reader?.releaseLock();
    },
  });
  const init: RequestInit & { duplex: 'half' } = { body: limited, duplex: 'half' };
  c.req.raw = new Request(c.req.raw, init);
  keepForDrain(c.req.raw, source);
}

/** Refuses a body over `maxBytes` with 413 while reading, never buffering more than that. */
export function limitBody(c: Context, maxBytes: number): void {
  const declared = declaredLength(c);
  if (declared !== undefined && declared > maxBytes) throw tooLarge(maxBytes);
  // Node's parser stops a declared body at its length; any other is counted while read.
  if (declared === undefined || !incomingOf(c)) limitStream(c, maxBytes);
}

function readIncoming(incoming: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    incoming.once('error', reject);
  });
}

function isJsonType(contentType: string | undefined): boolean {
  if (!contentType || contentType === 'application/json') return true;
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  // curl -d sends form-urlencoded by default; TF Serving reads such bodies as JSON, so do we.
  return (
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/x-www-form-urlencoded'
  );
}

function unreadable(err: unknown): never {
  if (err instanceof ApiError) throw err;
  const reason = err instanceof Error ? err.message : String(err);
  throw new ApiError('invalid_json', `The request body could not be read: ${reason}.`);
}

/** Reads the body as JSON: 415 for another media type, 400 invalid_json when it does not parse. */
export async function readJson(c: Context): Promise<unknown> {
  if (!isJsonType(headerOf(c, 'content-type'))) {
    throw new ApiError('unsupported_media_type', 'Send the body as application/json.');
  }
  const incoming = incomingOf(c);
  const direct = incoming && declaredLength(c) !== undefined && !incoming.readableEnded;
  // Under @hono/node-server the Node request is at hand. Reading the body from it directly
  // spares building a web Request (streams, abort signal) per request, the largest cost of a
  // cache hit.
  const text = direct ? await readIncoming(incoming) : await c.req.text().catch(unreadable);
  if (text.trim() === '')
    throw new ApiError('invalid_json', 'The request body is empty; send a JSON object.');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError(
      'invalid_json',
      `The request body is not valid JSON: ${(err as Error).message}.`,
    );
  }
}
