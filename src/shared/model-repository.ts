import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { z } from 'zod';
import { ApiError } from './errors.js';
import type { Logger } from './logger.js';
import { readOnnxSignature, type TensorSpec } from './onnx-metadata.js';

/** Model and version names allowed in the repository and in URLs. */
export const MODEL_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

/** What a model's outputs mean. */
export type Task = 'classification' | 'regression' | 'raw';

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

/** The models found under MODEL_DIR, with their ONNX signatures; read-only once scanned. */
export class ModelRepository {
  private constructor(private readonly models: Map<string, ModelEntry>) {}

  /** Scans `dir`; versions that fail to load are logged and skipped, never fatal. */
  static async scan(dir: string, versionsKept: number, logger?: Logger): Promise<ModelRepository> {
    const models = new Map<string, ModelEntry>();
    for (const name of (await listDirs(dir)).filter((n) => MODEL_NAME_RE.test(n)).sort()) {
      const names = (await listDirs(join(dir, name))).filter((v) => semver.valid(v) === v);
      const versions: ModelVersion[] = [];
      for (const version of names.sort(semver.rcompare)) {
        try {
          versions.push(await loadVersion(dir, name, version));
        } catch (err) {
          logger?.error(
            { err, model: name, version },
            'skipping model version that failed to load',
          );
        }
      }
      versions.forEach((v, i) => (v.served = i < versionsKept));
      const first = versions[0];
      if (first) models.set(name, { name, versions, default: first.version });
    }
    return new ModelRepository(models);
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
