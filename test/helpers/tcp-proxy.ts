import { connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy listening on a free 127.0.0.1 port. */
export interface TcpProxy {
  port: number;
  /** Destroys every connection, then stops listening. */
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 and pairs each client connection with a new one to `targetPort`; `wire`
 * moves the bytes between them (and decides what to hold back or cut). When either side
 * closes or fails, both are destroyed.
 */
export async function startTcpProxy(
  targetPort: number,
  wire: (client: Socket, upstream: Socket) => void,
): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', drop).on('error', drop);
    upstream.on('close', drop).on('error', drop);
    wire(client, upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
