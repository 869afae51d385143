import { startTcpProxy } from './tcp-proxy.js';

/**
 * A TCP proxy in front of a Redis server that reads the commands its clients send (RESP arrays,
 * as ioredis writes them) and can stop passing on a connection's commands from one that
 * matches: what a process killed just before sending it would have sent. Replies always pass.
 */
export interface RespCutProxy {
  port: number;
  url: string;
  /**
   * From now on, the first connection to send a command that `match` accepts (given its name,
   * upper case, and its first argument) passes on nothing from that command on. Resolves with
   * that moment.
   */
  cutAt(match: (name: string, first: string) => boolean): Promise<void>;
  close(): Promise<void>;
}

// Length of the first complete RESP array in `buf` from `at`, with its command name; undefined
// while incomplete.
function nextCommand(
  buf: Buffer,
  at: number,
): { end: number; name: string; first: string } | undefined {
  const line = (from: number) => {
    const eol = buf.indexOf('\r\n', from);
    return eol < 0 ? undefined : { text: buf.toString('latin1', from, eol), next: eol + 2 };
  };
  const head = line(at);
  if (!head) return undefined;
  if (!head.text.startsWith('*')) throw new Error(`not a RESP array: ${head.text.slice(0, 20)}`);
  let pos = head.next;
  let name = '';
  let first = '';
  for (let i = 0; i < Number(head.text.slice(1)); i++) {
    const len = line(pos);
    if (!len) return undefined;
    const size = Number(len.text.slice(1));
    if (buf.length < len.next + size + 2) return undefined;
    if (i === 0) name = buf.toString('latin1', len.next, len.next + size).toUpperCase();
    if (i === 1) first = buf.toString('latin1', len.next, len.next + size);
    pos = len.next + size + 2;
  }
  return { end: pos, name, first };
}

/** Starts the proxy on a free 127.0.0.1 port in front of the Redis at `targetPort`. */
export async function startRespCutProxy(targetPort: number): Promise<RespCutProxy> {
  let armed: { match: (name: string, first: string) => boolean; done: () => void } | undefined;
  const proxy = await startTcpProxy(targetPort, (client, upstream) => {
    let pending: Buffer = Buffer.alloc(0);
    let cut = false;
    client.on('data', (chunk: Buffer) => {
      if (cut) return;
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let at = 0;
      for (;;) {
        const cmd = nextCommand(pending, at);
        if (!cmd) break;
        if (armed?.match(cmd.name, cmd.first)) {
          const { done } = armed;
          armed = undefined;
          cut = true;
          upstream.write(pending.subarray(0, at));
          done();
          return;
        }
        at = cmd.end;
      }
      upstream.write(pending.subarray(0, at));
      pending = pending.subarray(at);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
  });
  return {
    port: proxy.port,
    url: `redis://127.0.0.1:${proxy.port}`,
    cutAt: (match) =>
      new Promise<void>((done) => {
        armed = { match, done };
      }),
    close: () => proxy.close(),
  };
}
