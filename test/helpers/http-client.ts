import { Agent, request, type IncomingHttpHeaders } from 'node:http';

/** One request as a hostile client sends it. */
export interface RawRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  /** Sent with Content-Length (set here unless `headers` declares another). */
  body?: string | Uint8Array;
  /** Sent one write each with Transfer-Encoding: chunked, stopping once an answer came. */
  chunks?: Uint8Array[];
}

/** What came back. */
export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Whether the request went out on a socket an earlier request had used (keep-alive). */
  reused: boolean;
}

/**
 * A connection lost before any answer arrived (reset, hang-up): what a client experiences as
 * a dropped request. An error after the answer (the server closing while the client was still
 * uploading a refused body) is not one.
 */
export class DroppedError extends Error {
  constructor(
    readonly code: string,
    readonly reused: boolean,
    message: string,
  ) {
    super(message);
    this.name = 'DroppedError';
  }
}

/** A keep-alive agent of `sockets` connections, as a busy client would use. */
export function keepAliveAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
}

function isReused(req: { reusedSocket?: boolean }): boolean {
  return req.reusedSocket === true;
}

/** Sends `r` to `baseUrl` through `agent`; rejects with DroppedError when no answer came. */
export function send(
  agent: Agent,
  baseUrl: string,
  r: RawRequest,
  timeoutMs = 20_000,
): Promise<RawResponse> {
  // The path goes out as written (`//v1//models` is a path here, not a host).
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    let answered = false;
    let settled = false;
    const headers: Record<string, string> = { ...r.headers };
    if (r.body !== undefined && !Object.keys(headers).some((h) => /^content-length$/i.test(h)))
      headers['content-length'] = String(Buffer.byteLength(r.body));
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: r.method,
        path: r.path,
        headers,
      },
      (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          settled = true;
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts).toString('utf8'),
            reused: isReused(req),
          });
        });
        res.on('error', (err) => fail(err));
        // Closed before its end: the answer was cut off.
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('answer cut off'), { code: 'ABORTED' }));
        });
      },
    );
    const fail = (err: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const code = err.code ?? err.message;
      reject(new DroppedError(code, isReused(req), `${r.method} ${r.path.slice(0, 80)}: ${code}`));
    };
    const timer = setTimeout(() => {
      fail(Object.assign(new Error('no answer in time'), { code: 'TIMEOUT' }));
      req.destroy();
    }, timeoutMs);
    // Once an answer came, an upload error (the server closing on a refused body) is no drop:
    // the answer itself decides.
    req.on('error', (err) => {
      if (!answered) fail(err);
    });
    if (r.chunks) {
      void writeChunks(req, r.chunks, () => answered);
    } else {
      req.end(r.body);
    }
  });
}

async function writeChunks(
  req: ReturnType<typeof request>,
  chunks: Uint8Array[],
  answered: () => boolean,
): Promise<void> {
  for (const chunk of chunks) {
    if (answered() || req.destroyed) break;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.once('drain', done);
        req.once('close', done);
      });
    }
  }
  if (!req.destroyed) req.end();
}
