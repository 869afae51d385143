import type { Config } from '../../shared/config.js';
import { createKeys } from '../../shared/keys.js';
import type { Logger } from '../../shared/logger.js';
import { ReloadSignal } from '../../shared/reload-signal.js';
import type { ModelRepository } from '../../shared/model-repository.js';
import { topologyOf } from '../../shared/redis.js';

/**
 * Keeps the API's view of MODEL_DIR current: rescans every MODEL_RESCAN_MS and whenever a
 * reload is published (POST /admin/models/reload on any replica). Routes read the repository,
 * whose contents are swapped whole, so a request sees either the old or the new listing.
 */
export function apiModelReloads(
  config: Config,
  repository: ModelRepository,
  logger: Logger,
): ReloadSignal {
  return new ReloadSignal({
    topology: topologyOf(config),
    channel: createKeys(config.QUEUE_PREFIX).modelsReloadChannel(),
    periodMs: config.MODEL_RESCAN_MS,
    logger,
    reload: async () => {
      const { added, removed } = await repository.reload();
      if (added.length > 0 || removed.length > 0) {
        logger.info({ added, removed }, 'model repository changed');
      }
    },
  });
}
