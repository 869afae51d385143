import { z } from 'zod';
import { ApiError, type ErrorDetail } from './errors.js';
import { MODEL_NAME_RE } from './model-repository.js';

// Largest finite float32; larger JSON numbers would become Infinity in the model's input tensor.
const FLOAT32_MAX = 3.4028234663852886e38;

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

// The first bad element of a number array (depth 1) or of an array of them (depth 2).
function firstBadFeature(
  value: unknown,
  depth: 1 | 2,
): { path: number[]; message: string } | undefined {
  if (!Array.isArray(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (depth === 1) {
      const message = featureProblem(item);
      if (message) return { path: [i], message };
    } else if (!Array.isArray(item)) {
      const received = item === null ? 'null' : typeof item;
      return { path: [i], message: `Invalid input: expected array, received ${received}` };
    } else {
      const inner = firstBadFeature(item, 1);
      if (inner) return { path: [i, ...inner.path], message: inner.message };
    }
  }
  return undefined;
}

// zod reports one issue per bad element: a body of a million bad values would hold the event
// loop for seconds. This pre-pass stops at the first one, so zod only ever sees valid arrays.
function firstIssueOnly<T extends z.ZodType>(depth: 1 | 2, schema: T) {
  return z.preprocess((value, ctx) => {
    const bad = firstBadFeature(value, depth);
    if (bad) ctx.addIssue({ code: 'custom', message: bad.message, input: value, path: bad.path });
    return value;
  }, schema);
}

/** The features of one instance: finite float32 numbers. */
export const FeaturesSchema = firstIssueOnly(1, z.array(FeatureSchema));

/** A list of instances, each a list of finite float32 numbers; at least one. */
export const InstancesSchema = firstIssueOnly(
  2,
  z.array(z.array(FeatureSchema)).min(1, 'must hold at least one instance'),
);

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
  });
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
  });
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

/** Parses `value` with `schema` or throws 422 validation_error with paths in details. */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = zodDetails(result.error);
  const first = details[0];
  const message = first ? `${first.path ? `${first.path}: ` : ''}${first.message}` : undefined;
  throw new ApiError('validation_error', message, details);
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

/**
 * Checks feature counts against the model's input width and flattens the instances.
 * Throws 422 naming the first instance of the wrong width.
 */
export function toInput(
  body: { features?: number[]; instances?: number[][] },
  rowSize: number,
  maxInstances: number,
): ValidatedInput {
  const single = body.features !== undefined;
  const instances = body.features !== undefined ? [body.features] : (body.instances ?? []);
  if (instances.length > maxInstances) {
    throw new ApiError(
      'validation_error',
      `At most ${maxInstances} instances per request, got ${instances.length}.`,
      [{ path: 'instances', message: `at most ${maxInstances} instances` }],
    );
  }
  if (rowSize < 0) {
    throw new ApiError(
      'validation_error',
      'This model takes tensors with free dimensions; use POST /v2/models/{model}/infer.',
    );
  }
  const values = new Float32Array(instances.length * rowSize);
  const flat: number[] = [];
  instances.forEach((row, i) => {
    if (row.length !== rowSize) {
      const path = single ? 'features' : `instances[${i}]`;
      const message = `expected ${rowSize} features, got ${row.length}`;
      throw new ApiError('validation_error', `${path}: ${message}`, [{ path, message }]);
    }
    values.set(row, i * rowSize);
    for (const v of row) flat.push(v);
  });
  return { rows: instances.length, values, flat, single };
}
