import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { installShutdown } from '../shared/shutdown.js';
import { startWorker } from './worker.js';

/** Entry point of `inferq worker`. */
export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ service: 'worker', level: config.LOG_LEVEL });
  const handle = await startWorker({ config, logger });
  installShutdown({
    logger,
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    exitWithParent: process.argv.some((a) => a.startsWith('--exit-with-parent')),
    close: () => handle.close(),
  });
}
