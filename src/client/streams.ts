import type { BatchItem, ServerEvent } from './types.js';

/** Yields the lines of a UTF-8 byte stream (without their `\n` / `\r\n`), decoding as it goes. */
export async function* readLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffered = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let start = 0;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n', start)) {
        const end = nl > start && buffered.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        yield buffered.slice(start, end);
        start = nl + 1;
      }
      buffered = buffered.slice(start);
    }
    buffered += decoder.decode();
    if (buffered.length > 0) yield buffered.endsWith('\r') ? buffered.slice(0, -1) : buffered;
  } finally {
    // Stopping early (break in a for-await) must release the connection.
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * Yields a byte stream in blocks of whole lines, as received and never decoded: each block ends
 * with `\n`, except the last when the stream did not end with one.
 */
export async function* readLineBlocks(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const reader = body.getReader();
  let carry: Uint8Array | undefined;
  const joined = (tail: Uint8Array) => (carry ? Buffer.concat([carry, tail]) : tail);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const last = value.lastIndexOf(10);
      if (last < 0) {
        carry = joined(value);
        continue;
      }
      const lines = joined(value.subarray(0, last + 1));
      carry = last + 1 < value.length ? value.subarray(last + 1) : undefined;
      yield lines;
    }
    if (carry && carry.length > 0) yield carry;
  } finally {
    // Stopping early (break in a for-await) must release the connection.
    await reader.cancel().catch(() => undefined);
  }
}

/** Yields each non-empty NDJSON line of the stream, parsed. */
export async function* readNdjson<T>(body: ReadableStream<Uint8Array>): AsyncGenerator<T> {
  for await (const line of readLines(body)) {
    if (line.trim().length > 0) yield JSON.parse(line) as T;
  }
}

function parseData(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

/** Parses a text/event-stream body (the WHATWG Server-Sent Events format) into events. */
export async function* readServerEvents<T = unknown>(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerEvent<T>> {
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  for await (const line of readLines(body)) {
    if (line === '') {
      if (data.length > 0) {
        const parsed = parseData(data.join('\n')) as T;
        yield id === undefined
          ? { event: event || 'message', data: parsed }
          : { event: event || 'message', data: parsed, id };
      }
      event = '';
      data = [];
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
  }
}

/** Anything a batch's items can come from. */
export type ItemSource = Iterable<BatchItem> | AsyncIterable<BatchItem>;

/** Raw NDJSON bytes, e.g. `fs.createReadStream('rows.jsonl')`. */
export type ByteSource = AsyncIterable<Uint8Array | string> | ReadableStream<Uint8Array>;

// Enough lines per chunk to keep per-chunk overhead small, small enough to stream smoothly.
const CHUNK_BYTES = 64 * 1024;

async function* itemChunks(items: ItemSource): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  let pending = '';
  for await (const item of items) {
    pending += `${JSON.stringify(item)}\n`;
    if (pending.length >= CHUNK_BYTES) {
      yield encoder.encode(pending);
      pending = '';
    }
  }
  if (pending.length > 0) yield encoder.encode(pending);
}

async function* byteChunks(source: AsyncIterable<Uint8Array | string>): AsyncGenerator<Uint8Array> {
  const encoder = new TextEncoder();
  for await (const chunk of source) yield typeof chunk === 'string' ? encoder.encode(chunk) : chunk;
}

/** An upload body read lazily from its source, and the source's own error if it failed. */
export interface UploadBody {
  stream: ReadableStream<Uint8Array>;
  /** The error the source threw, if any (fetch reports it only as a network failure). */
  sourceError(): unknown;
}

/** Builds a pull-based upload stream: nothing is read ahead of what the socket takes. */
export function uploadBody(source: { items: ItemSource } | { bytes: ByteSource }): UploadBody {
  if ('bytes' in source && source.bytes instanceof ReadableStream) {
    return { stream: source.bytes, sourceError: () => undefined };
  }
  const chunks =
    'items' in source
      ? itemChunks(source.items)
      : byteChunks(source.bytes as AsyncIterable<Uint8Array | string>);
  let failure: unknown;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (err) {
        failure = err;
        controller.error(err);
      }
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
  return { stream, sourceError: () => failure };
}
