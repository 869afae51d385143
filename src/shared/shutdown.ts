import type { Logger } from './logger.js';

/** Options of installShutdown. */
export interface ShutdownOptions {
  logger: Logger;
  /** Longest the graceful close may take before the process exits anyway, milliseconds. */
  timeoutMs: number;
  /** Finishes in-flight work and closes connections. */
  close: () => Promise<void>;
  /** Also shut down when the parent process dies (children of `inferq start`). */
  exitWithParent?: boolean;
}

/** On SIGTERM or SIGINT: close gracefully, then exit (forced after timeoutMs). */
export function installShutdown({
  logger,
  timeoutMs,
  close,
  exitWithParent,
}: ShutdownOptions): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error({ timeoutMs }, 'graceful shutdown timed out; exiting');
      process.exit(1);
    }, timeoutMs);
    force.unref();
    close().then(
      () => {
        logger.info('shutdown complete');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  if (exitWithParent) {
    // An orphaned worker would keep consuming the queue: follow the parent out.
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) onSignal('SIGTERM');
    }, 500).unref();
  }
}
