import { startTcpProxy } from '../helpers/tcp-proxy.js';

/** Which exchange to cut, and after how many of its bytes. */
export interface CutRule {
  /** Text that marks the request to cut (its request line), e.g. `POST /v1/batches`. */
  request: string;
  /** Cut once this many request-body bytes (`upload`) or response bytes (`download`) passed. */
  afterBytes: number;
  direction: 'upload' | 'download';
}

/** A TCP proxy in front of an HTTP server that cuts one chosen exchange mid-way, once. */
export interface CuttingProxy {
  url: string;
  /** How many exchanges were cut so far. */
  cuts(): number;
  /** Arms a rule; it cuts the next matching exchange, then disarms. */
  arm(rule: CutRule): void;
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 forwarding to `target` (host:port of an HTTP server). */
export async function startCuttingProxy(targetPort: number): Promise<CuttingProxy> {
  let rule: CutRule | undefined;
  let cuts = 0;
  const proxy = await startTcpProxy(targetPort, (client, upstream) => {
    let counted: CutRule | undefined;
    let bytes = 0;
    const cut = () => {
      cuts++;
      client.destroy();
      upstream.destroy();
    };
    const count = (chunk: Buffer, direction: CutRule['direction']) => {
      if (!counted || counted.direction !== direction) return false;
      bytes += chunk.length;
      if (bytes < counted.afterBytes) return false;
      counted = undefined;
      cut();
      return true;
    };
    client.on('data', (chunk: Buffer) => {
      if (rule && chunk.includes(rule.request)) {
        counted = rule;
        rule = undefined;
        bytes = 0;
      }
      if (!count(chunk, 'upload')) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!count(chunk, 'download')) client.write(chunk);
    });
  });
  return {
    url: `http://127.0.0.1:${proxy.port}`,
    cuts: () => cuts,
    arm: (next) => (rule = next),
    close: () => proxy.close(),
  };
}
