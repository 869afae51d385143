import { loadConfig, redactUrl } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { installShutdown } from '../shared/shutdown.js';
import { buildApi } from './server.js';

/** Entry point of `inferq api`. */
export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ service: 'api', level: config.LOG_LEVEL });
  const api = await buildApi(config, logger);
  const port = await api.listen();
  logger.info(
    {
      port,
      host: config.HOST,
      redis: redactUrl(config.REDIS_URL),
      models: api.deps.repository.size,
    },
    'api listening',
  );
  installShutdown({
    logger,
    timeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    exitWithParent: process.argv.some((a) => a.startsWith('--exit-with-parent')),
    close: () => api.close(),
  });
}
