import { describe, expect, it } from 'vitest';
import {
  readLineBlocks,
  readLines,
  readNdjson,
  readServerEvents,
  uploadBody,
} from '../../src/client/streams.js';

/** A byte stream delivering `chunks` one by one, as a socket would. */
function bytes(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(typeof c === 'string' ? encoder.encode(c) : c);
      controller.close();
    },
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('readLineBlocks', () => {
  it('hands over whole lines only, whatever the chunk borders, and a last line without newline', async () => {
    const blocks = await collect(readLineBlocks(bytes('ab', 'c\nd', 'e', 'f\ng\nh', 'i')));
    const text = blocks.map((b) => Buffer.from(b).toString());
    expect(text).toEqual(['abc\n', 'def\ng\n', 'hi']);
  });
});

describe('readLines', () => {
  it('splits lines across chunk borders, CRLF included, and keeps a last line without newline', async () => {
    const lines = await collect(readLines(bytes('a\r\nb', 'c\n', '\nd')));
    expect(lines).toEqual(['a', 'bc', '', 'd']);
  });

  it('decodes a multi-byte character split between two chunks', async () => {
    const euro = new TextEncoder().encode('€\n'); // 3 bytes + newline
    const lines = await collect(readLines(bytes(euro.slice(0, 1), euro.slice(1))));
    expect(lines).toEqual(['€']);
  });
});

describe('readNdjson', () => {
  it('parses each non-empty line', async () => {
    const rows = await collect(readNdjson(bytes('{"index":0}\n\n{"ind', 'ex":1}\n')));
    expect(rows).toEqual([{ index: 0 }, { index: 1 }]);
  });
});

describe('readServerEvents', () => {
  it('parses named events, JSON and multi-line data, ids, and skips comments', async () => {
    const stream = bytes(
      ': keep-alive\n\n',
      'event: status\ndata: {"status":"queued"}\nid: 1\n\n',
      'data: line one\r\ndata: line two\r\n\r\n',
      'event: done\ndata:{"ok":true}\n\n',
    );
    expect(await collect(readServerEvents(stream))).toEqual([
      { event: 'status', data: { status: 'queued' }, id: '1' },
      { event: 'message', data: 'line one\nline two', id: '1' },
      { event: 'done', data: { ok: true }, id: '1' },
    ]);
  });
});

describe('uploadBody', () => {
  it('encodes items as NDJSON and reads the source only as the stream is pulled', async () => {
    let produced = 0;
    function* items() {
      for (let i = 0; i < 5000; i++) {
        produced++;
        yield { id: `r${i}`, features: [i, i + 0.5] };
      }
    }
    const body = uploadBody({ items: items() });
    const reader = body.stream.getReader();
    const first = await reader.read();
    expect(produced).toBeLessThan(5000);
    const rest = await collect(
      readLines(
        new ReadableStream({
          start(c) {
            if (first.value) c.enqueue(first.value);
          },
          async pull(c) {
            const next = await reader.read();
            if (next.done) c.close();
            else c.enqueue(next.value);
          },
        }),
      ),
    );
    expect(rest).toHaveLength(5000);
    expect(JSON.parse(rest[4999] ?? '')).toEqual({ id: 'r4999', features: [4999, 4999.5] });
  });

  it('remembers the error of a failing source', async () => {
    async function* broken() {
      yield { features: [1] };
      await Promise.resolve();
      throw new Error('disk gone');
    }
    const body = uploadBody({ items: broken() });
    await expect(collect(readLines(body.stream))).rejects.toThrow('disk gone');
    expect((body.sourceError() as Error).message).toBe('disk gone');
  });
});
