import { z } from 'zod';
import { ApiError, type ErrorDetail } from './errors.js';
import { MODEL_NAME_RE } from './model-repository.js';
import { FLOAT32_MAX } from './public-types.js';

/** One finite number that fits a float32. */
export const FeatureSchema = z
  .number({
    error: (issue) =>
      typeof issue.input === 'number' ? 'must be a finite number' : 'must be a number',
  })
  .refine(Number.isFinite, 'must be a finite number')
  .refine((v) => Math.abs(v) <= FLOAT32_MAX, 'is outside the float32 range');

function featureProblem(v: unknown): string | undefined {
  if (typeof v !== 'number') return 'must be a number';
  if (!Number.isFinite(v)) return 'must be a finite number';
  if (Math.abs(v) > FLOAT32_MAX) return 'is outside the float32 range';
  return undefined;
}

// How the document describes the arrays below (a custom check has no JSON Schema of its own).
const NUMBERS_DOC = { type: 'array', items: { type: 'number' } } as const;

/**
 * The features of one instance: an array, taken as it comes. Its length is compared with the
 * model's input width before any element is looked at (`toInput`), so a huge body of the wrong
 * width is refused without a per-element pass; `toInput` then checks each element once.
 */
export const FeaturesSchema = z
  .custom<unknown[]>((v) => Array.isArray(v), 'must be an array of numbers')
  .meta(NUMBERS_DOC);

/** A list of instances, each an array of numbers; counted and measured by `toInput` first. */
export const InstancesSchema = z
  .custom<unknown[]>((v) => Array.isArray(v), 'must be an array of instances (arrays of numbers)')
  .meta({ type: 'array', minItems: 1, items: NUMBERS_DOC });

/** A semver version string. */
export const VersionSchema = z
  .string()
  .regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/, 'must be a semver version');

/** A model name as used in the repository. */
export const ModelNameSchema = z.string().regex(MODEL_NAME_RE, 'must match [a-z0-9][a-z0-9._-]*');

/** Inputs of an online prediction: one instance or many. */
export const PredictRequestSchema = z
  .object({
    features: FeaturesSchema.optional(),
    instances: InstancesSchema.optional(),
  })
  .refine((b) => (b.features === undefined) !== (b.instances === undefined), {
    message: 'send exactly one of "features" (one instance) or "instances" (a list)',
  })
  .meta({ id: 'PredictRequest' });
export type PredictRequest = z.infer<typeof PredictRequestSchema>;

/** Body of POST /v1/jobs. */
export const JobRequestSchema = z
  .object({
    model: ModelNameSchema,
    version: VersionSchema.optional(),
    priority: z.number().int().min(1).max(10).optional(),
    features: FeaturesSchema.optional(),
    instances: InstancesSchema.optional(),
  })
  .refine((b) => (b.features === undefined) !== (b.instances === undefined), {
    message: 'send exactly one of "features" (one instance) or "instances" (a list)',
  })
  .meta({ id: 'JobRequest' });
export type JobRequest = z.infer<typeof JobRequestSchema>;

function pathOf(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** Converts zod issues into public error details. */
export function zodDetails(error: z.ZodError): ErrorDetail[] {
  return error.issues.slice(0, 20).map((issue) => {
    const path = pathOf(issue.path);
    return path ? { path, message: issue.message } : { message: issue.message };
  });
}

/** The 422 validation_error of a failed parse, with paths in details. */
export function validationError(error: z.ZodError): ApiError {
  const details = zodDetails(error);
  const first = details[0];
  const message = first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : undefined;
  return new ApiError('validation_error', message, details);
}

/** Parses `value` with `schema` or throws 422 validation_error with paths in details. */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw validationError(result.error);
}

/** Instances checked against a model's row width, ready for a job. */
export interface ValidatedInput {
  rows: number;
  /** The values as float32: what the model sees and what the cache key hashes. */
  values: Float32Array;
  /** The same values as sent, row-major, for the job payload. */
  flat: number[];
  /** Whether the request sent one instance as `features`. */
  single: boolean;
}

function invalid(path: string, message: string): ApiError {
  return new ApiError('validation_error', `${path}: ${message}`, [{ path, message }]);
}

// Sizes first: the instance count and every row's width are checked before any element, so a
// body of millions of numbers of the wrong width costs no per-element work.
function checkSizes(
  instances: readonly unknown[],
  single: boolean,
  rowSize: number,
  maxInstances: number,
): asserts instances is unknown[][] {
  if (instances.length > maxInstances) {
    throw new ApiError(
      'validation_error',
      `At most ${maxInstances} instances per request, got ${instances.length}.`,
      [{ path: 'instances', message: `at most ${maxInstances} instances` }],
    );
  }
  if (instances.length === 0) throw invalid('instances', 'must hold at least one instance');
  if (rowSize < 0) {
    throw new ApiError(
      'validation_error',
      'This model takes tensors with free dimensions; use POST /v2/models/{model}/infer.',
    );
  }
  for (let i = 0; i < instances.length; i++) {
    const row = instances[i];
    const path = single ? 'features' : `instances[${i}]`;
    if (!Array.isArray(row)) throw invalid(path, 'must be an array of numbers');
    if (row.length !== rowSize)
      throw invalid(path, `expected ${rowSize} features, got ${row.length}`);
  }
}

/**
 * Checks the instance count and feature counts against the model's input width, then every
 * value (a finite float32 number), and flattens the instances. Throws 422 naming the first
 * instance of the wrong width, or the first bad value.
 */
export function toInput(
  body: { features?: unknown[]; instances?: unknown[] },
  rowSize: number,
  maxInstances: number,
): ValidatedInput {
  const single = body.features !== undefined;
  const instances = body.features !== undefined ? [body.features] : (body.instances ?? []);
  checkSizes(instances, single, rowSize, maxInstances);
  const values = new Float32Array(instances.length * rowSize);
  const flat: number[] = [];
  for (let i = 0; i < instances.length; i++) {
    const row = instances[i] as unknown[];
    for (let j = 0; j < rowSize; j++) {
      const v = row[j];
      const problem = featureProblem(v);
      if (problem) throw invalid(`${single ? 'features' : `instances[${i}]`}[${j}]`, problem);
      values[i * rowSize + j] = v as number;
      flat.push(v as number);
    }
  }
  return { rows: instances.length, values, flat, single };
}
