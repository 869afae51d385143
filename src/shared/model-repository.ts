import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { z } from 'zod';
import { ApiError } from './errors.js';
import type { Logger } from './logger.js';
import { readOnnxSignature, type TensorSpec } from './onnx-metadata.js';
import type { Task } from './public-types.js';

/** Model and version names allowed in the repository and in URLs. */
export const MODEL_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

export type { Task } from './public-types.js';

/** The optional model.json beside each model.onnx. */
export const ModelCardSchema = z.object({
  task: z.enum(['classification', 'regression', 'raw']).default('raw'),
  description: z.string().optional(),
  labels: z.array(z.string()).optional(),
  features: z.array(z.string()).optional(),
  batching: z
    .object({
      maxBatchSize: z.number().int().positive().optional(),
      maxBatchDelayMs: z.number().nonnegative().optional(),
      /** Run a partial batch at once while the model is idle (default true); false = always wait the delay. */
      runWhenIdle: z.boolean().optional(),
    })
    .optional(),
  card: z.record(z.string(), z.unknown()).optional(),
});
export type ModelCard = z.infer<typeof ModelCardSchema>;

/** One version of a model: its files, meaning and tensor signature. */
export interface ModelVersion {
  name: string;
  version: string;
  onnxPath: string;
  task: Task;
  description?: string;
  labels?: string[];
  features?: string[];
  batching?: ModelCard['batching'];
  card?: Record<string, unknown>;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Values in one instance of the first input (product of its non-batch dimensions), or -1 if free. */
  rowSize: number;
  /** Whether this version is among the MODEL_VERSIONS_KEPT newest and so is served. */
  served: boolean;
  /** Modification time of model.onnx, ms since epoch; feeds the ETag. */
  mtimeMs: number;
}

/** A model with its versions, newest first. */
export interface ModelEntry {
  name: string;
  versions: ModelVersion[];
  /** The highest version. */
  default: string;
}

function rowSizeOf(input: TensorSpec | undefined): number {
  if (!input) return -1;
  const rest = input.shape.slice(1);
  if (rest.some((d) => d < 0)) return -1;
  return rest.reduce((a, b) => a * b, 1);
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function readCard(path: string): Promise<ModelCard> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ModelCardSchema.parse({});
    throw err;
  }
  return ModelCardSchema.parse(JSON.parse(text));
}

async function loadVersion(dir: string, name: string, version: string): Promise<ModelVersion> {
  const onnxPath = join(dir, name, version, 'model.onnx');
  const [info, card, signature] = await Promise.all([
    stat(onnxPath),
    readCard(join(dir, name, version, 'model.json')),
    readOnnxSignature(onnxPath),
  ]);
  return {
    name,
    version,
    onnxPath,
    task: card.task,
    description: card.description,
    labels: card.labels,
    features: card.features,
    batching: card.batching,
    card: card.card,
    inputs: signature.inputs,
    outputs: signature.outputs,
    rowSize: rowSizeOf(signature.inputs[0]),
    served: true,
    mtimeMs: info.mtimeMs,
  };
}

// A version whose model.onnx kept its modification time is taken from the previous scan rather
// than parsed again: a rescan every few seconds must not re-read every model file.
async function reuseOrLoad(
  dir: string,
  name: string,
  version: string,
  previous: Map<string, ModelEntry> | undefined,
): Promise<ModelVersion> {
  const before = previous?.get(name)?.versions.find((v) => v.version === version);
  if (before) {
    const info = await stat(before.onnxPath);
    if (info.mtimeMs === before.mtimeMs) return { ...before };
  }
  return loadVersion(dir, name, version);
}

async function scanModels(
  dir: string,
  versionsKept: number,
  logger?: Logger,
  previous?: Map<string, ModelEntry>,
  failed = new Map<string, number>(),
): Promise<Map<string, ModelEntry>> {
  const models = new Map<string, ModelEntry>();
  for (const name of (await listDirs(dir)).filter((n) => MODEL_NAME_RE.test(n)).sort()) {
    const names = (await listDirs(join(dir, name))).filter((v) => semver.valid(v) === v);
    const versions: ModelVersion[] = [];
    for (const version of names.sort(semver.rcompare)) {
      try {
        versions.push(await reuseOrLoad(dir, name, version, previous));
      } catch (err) {
        // Logged once per file: rescans meet the same broken version every few seconds.
        const onnx = join(dir, name, version, 'model.onnx');
        const mtimeMs = await stat(onnx).then(
          (s) => s.mtimeMs,
          () => -1,
        );
        if (failed.get(`${name}@${version}`) !== mtimeMs) {
          logger?.error(
            { err, model: name, version },
            'skipping model version that failed to load',
          );
        }
        failed.set(`${name}@${version}`, mtimeMs);
      }
    }
    versions.forEach((v, i) => (v.served = i < versionsKept));
    const first = versions[0];
    if (first) models.set(name, { name, versions, default: first.version });
  }
  return models;
}

/** The models found under MODEL_DIR, with their ONNX signatures; replaced whole by reload(). */
export class ModelRepository {
  private constructor(
    private models: Map<string, ModelEntry>,
    private readonly source: { dir: string; versionsKept: number; logger?: Logger },
    /** Versions that failed to load, by `name@version`, with their model.onnx mtime. */
    private readonly failed: Map<string, number>,
  ) {}

  /** Scans `dir`; versions that fail to load are logged and skipped, never fatal. */
  static async scan(dir: string, versionsKept: number, logger?: Logger): Promise<ModelRepository> {
    const failed = new Map<string, number>();
    const models = await scanModels(dir, versionsKept, logger, undefined, failed);
    return new ModelRepository(models, { dir, versionsKept, logger }, failed);
  }

  /**
   * Rescans the folder and swaps in the result at once, so readers never see a half-read
   * repository. Returns the `name@version` keys that appeared and disappeared.
   */
  async reload(): Promise<{ added: string[]; removed: string[] }> {
    const { dir, versionsKept, logger } = this.source;
    const next = await scanModels(dir, versionsKept, logger, this.models, this.failed);
    const keysOf = (m: Map<string, ModelEntry>) =>
      new Set([...m.values()].flatMap((e) => e.versions.map((v) => `${v.name}@${v.version}`)));
    const before = keysOf(this.models);
    const after = keysOf(next);
    this.models = next;
    return {
      added: [...after].filter((k) => !before.has(k)),
      removed: [...before].filter((k) => !after.has(k)),
    };
  }

  /** All models, sorted by name. */
  list(): ModelEntry[] {
    return [...this.models.values()];
  }

  /** Number of models. */
  get size(): number {
    return this.models.size;
  }

  /** A model by name; throws 404 model_not_found. */
  model(name: string): ModelEntry {
    const entry = this.models.get(name);
    if (!entry) throw new ApiError('model_not_found', `Model "${name}" does not exist.`);
    return entry;
  }

  /** A served version (the default when none is asked); throws 404 model/version_not_found. */
  resolve(name: string, version?: string): ModelVersion {
    const entry = this.model(name);
    const wanted = version ?? entry.default;
    const found = entry.versions.find((v) => v.version === wanted);
    if (!found || !found.served) {
      const served = entry.versions.filter((v) => v.served).map((v) => v.version);
      throw new ApiError(
        'version_not_found',
        `Model "${name}" has no served version "${wanted}"; served versions: ${served.join(', ')}.`,
      );
    }
    return found;
  }

  /** Every served version of every model. */
  served(): ModelVersion[] {
    return this.list().flatMap((m) => m.versions.filter((v) => v.served));
  }
}
