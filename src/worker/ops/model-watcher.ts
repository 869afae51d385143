import type { Logger } from '../../shared/logger.js';
import type { ModelRepository, ModelVersion } from '../../shared/model-repository.js';
import { modelKey, type ModelPool } from '../inference/model-pool.js';

/** Options of ModelWatcher. */
export interface ModelWatcherOptions {
  repository: ModelRepository;
  pool: ModelPool;
  /** Newest loadable versions of each model to keep loaded (MODEL_VERSIONS_KEPT). */
  versionsKept: number;
  logger: Logger;
  /** Called when a version fails to load, for metrics. */
  onLoadFailed?: (model: ModelVersion) => void;
}

/**
 * Keeps the pool in step with the model folder: loads versions that appeared, unloads those
 * that fell out of the newest `versionsKept`. A version that fails to load is skipped (and not
 * retried until its model.onnx changes), so the versions before it keep serving.
 */
export class ModelWatcher {
  /** `name@version` -> modification time of the model.onnx that failed to load. */
  private readonly failed = new Map<string, number>();

  constructor(private readonly options: ModelWatcherOptions) {}

  /** Rescans the repository and loads or unloads versions to match it. */
  async sync(): Promise<void> {
    const { repository, pool, versionsKept, logger } = this.options;
    const { added, removed } = await repository.reload();
    if (added.length > 0 || removed.length > 0) {
      logger.info({ added, removed }, 'model repository changed');
    }
    const keep = new Set<string>();
    for (const entry of repository.list()) {
      let kept = 0;
      // Newest first: a version that cannot load leaves its slot to the next older one.
      for (const version of entry.versions) {
        if (kept >= versionsKept) break;
        if (!(await this.ensureLoaded(version))) continue;
        keep.add(modelKey(version.name, version.version));
        kept++;
      }
    }
    for (const key of pool.keys()) {
      if (keep.has(key)) continue;
      const at = key.lastIndexOf('@');
      await pool.unload(key.slice(0, at), key.slice(at + 1));
    }
  }

  /** Whether `version` is loaded now, loading it if needed. */
  private async ensureLoaded(version: ModelVersion): Promise<boolean> {
    const { pool, logger } = this.options;
    if (pool.get(version.name, version.version)) return true;
    const key = modelKey(version.name, version.version);
    if (this.failed.get(key) === version.mtimeMs) return false;
    try {
      await pool.load(version);
      this.failed.delete(key);
      return true;
    } catch (err) {
      this.failed.set(key, version.mtimeMs);
      this.options.onLoadFailed?.(version);
      logger.error(
        { err, model: version.name, version: version.version },
        'new model version failed to load; older versions keep serving',
      );
      return false;
    }
  }
}
