import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../../shared/logger.js';
import { credentialOf, digestOf, secretMatches } from '../../shared/secrets.js';

/** Options of startMetricsServer. */
export interface MetricsServerOptions {
  registry: Registry;
  port: number;
  host: string;
  /** Bearer token (or Basic password) required to scrape; empty = open. */
  token: string;
  logger: Logger;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound port (useful when 0 was asked). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves GET /metrics for Prometheus on a port of its own (node:http: the worker carries no web
 * framework). A port already in use is logged and skipped: metrics must never stop a worker.
 */
export async function startMetricsServer(
  options: MetricsServerOptions,
): Promise<MetricsServer | undefined> {
  const { registry, token, logger } = options;
  const expected = token ? [digestOf(token)] : [];
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const given = credentialOf(req.headers.authorization);
    if (token && (given === undefined || !secretMatches(given, expected))) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="inferq-metrics"' }).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => {
        logger.warn({ err }, 'metrics collection failed');
        res.writeHead(500).end();
      },
    );
  });
  const bound = await new Promise<number | undefined>((resolve) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      logger.warn(
        { err: err.message, port: options.port },
        'worker metrics endpoint not started: port unavailable',
      );
      resolve(undefined);
    });
    server.listen(options.port, options.host, () =>
      resolve((server.address() as AddressInfo).port),
    );
  });
  if (bound === undefined) return undefined;
  logger.info({ port: bound }, 'worker metrics at /metrics');
  return {
    port: bound,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
