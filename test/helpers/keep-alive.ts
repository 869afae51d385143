import { Agent, request } from 'node:http';

/** How one request of a keep-alive client ended. */
export interface KeepAliveReply {
  /** HTTP status, or 0 when the request failed (see `error`). */
  status: number;
  /** The `Connection` response header. */
  connection?: string;
  retryAfter?: string;
  /** `error.code` of an own-API error body. */
  code?: string;
  /** Error code when no response came: ECONNRESET, ECONNREFUSED, ... */
  error?: string;
  /** Whether the request went out on a socket that had already carried a request. */
  reused: boolean;
  sentAt: number;
  endedAt: number;
}

function codeOf(text: string): string | undefined {
  try {
    return (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** POSTs a JSON body through `agent` (node:http, so the socket and its headers are visible). */
export function postKeepAlive(
  agent: Agent,
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<KeepAliveReply> {
  const text = JSON.stringify(body);
  const sentAt = Date.now();
  return new Promise((resolve) => {
    let reused = false;
    const fail = (err: NodeJS.ErrnoException) =>
      resolve({ status: 0, error: err.code ?? err.message, reused, sentAt, endedAt: Date.now() });
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(text)),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            connection: res.headers.connection,
            retryAfter: res.headers['retry-after'],
            code: codeOf(Buffer.concat(chunks).toString('utf8')),
            reused,
            sentAt,
            endedAt: Date.now(),
          }),
        );
      },
    );
    req.on('socket', (socket) => {
      // A pooled socket is already connected when handed out.
      reused = !socket.connecting;
    });
    req.on('error', fail);
    req.end(text);
  });
}

/** A keep-alive agent holding one socket, as a client with one connection has. */
export function oneSocketAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1 });
}
