import { ApiError } from '../../shared/errors.js';
import type { JobTensor, PredictJobResult, RawTensor } from '../../shared/jobs.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import type { TensorSpec } from '../../shared/onnx-metadata.js';
import {
  elementCount,
  elementProblem,
  isFeedable,
  shapeProblem,
  tensorHash,
  typedArrayOf,
  type FeedableDatatype,
} from '../../shared/tensor-data.js';
import type {
  InferInput,
  InferOutput,
  InferRequest,
  InferResponse,
} from '../../shared/v2-schemas.js';
import type { JobSpec } from '../predict/predict-service.js';

/** An infer request checked against its model, ready to run. */
export interface InferPlan {
  model: ModelVersion;
  spec: JobSpec;
  /** `rows`: per-instance results stacked back into batch tensors; `direct`: whole tensors. */
  path: 'rows' | 'direct';
  /** Instances in the batch dimension. */
  rows: number;
  /** Output names to answer with, in order. */
  outputs: string[];
}

const bad = (message: string) => new ApiError('validation_error', message);

/**
 * Whether the model can go through the row batcher: one FP32 input whose only free dimension is
 * the first (the batch). Every other model runs each request alone, whatever its shapes.
 */
export function batchable(model: ModelVersion): boolean {
  const input = model.inputs[0];
  return (
    model.inputs.length === 1 &&
    input?.datatype === 'FP32' &&
    input.shape[0] === -1 &&
    model.rowSize >= 0
  );
}

/** Flattens flat or nested row-major `data` of `shape`, checking every element. */
function flatten(input: InferInput, datatype: FeedableDatatype): number[] {
  const { name, shape, data } = input;
  const out: number[] = [];
  const take = (v: unknown) => {
    const problem = elementProblem(datatype, v);
    if (problem) throw bad(`input "${name}": value ${JSON.stringify(v)} ${problem}`);
    out.push(v === true ? 1 : v === false ? 0 : (v as number));
  };
  const walk = (level: number, values: unknown[]) => {
    if (values.length !== shape[level])
      throw bad(
        `input "${name}": dimension ${level} holds ${values.length} values, shape says ${shape[level]}`,
      );
    for (const v of values) {
      if (level === shape.length - 1) take(v);
      else if (Array.isArray(v)) walk(level + 1, v);
      else throw bad(`input "${name}": nested data must follow shape [${shape.join(', ')}]`);
    }
  };
  const count = elementCount(shape);
  // Lengths before elements: nested data is measured level by level, flat data as a whole.
  if (shape.length > 1 && Array.isArray(data[0])) walk(0, data);
  else if (data.length !== count)
    throw bad(
      `input "${name}": shape [${shape.join(', ')}] needs ${count} values, got ${data.length}`,
    );
  else data.forEach(take);
  return out;
}

function checkInput(spec: TensorSpec, input: InferInput): JobTensor {
  if (input.datatype !== spec.datatype)
    throw bad(`input "${spec.name}": datatype must be ${spec.datatype}, got ${input.datatype}`);
  if (!isFeedable(spec.datatype))
    throw bad(`input "${spec.name}": datatype ${spec.datatype} cannot be sent as JSON here`);
  const problem = shapeProblem(spec, input.shape);
  if (problem) throw bad(`input "${spec.name}": ${problem}`);
  if (elementCount(input.shape) === 0) throw bad(`input "${spec.name}" holds no values`);
  return { datatype: spec.datatype, shape: input.shape, data: flatten(input, spec.datatype) };
}

function inputsByName(model: ModelVersion, inputs: InferInput[]): Map<string, InferInput> {
  const byName = new Map<string, InferInput>();
  const known = model.inputs.map((i) => i.name);
  for (const input of inputs) {
    if (!known.includes(input.name))
      throw bad(
        `"${input.name}" is not an input of ${model.name}; its inputs: ${known.join(', ')}`,
      );
    if (byName.has(input.name)) throw bad(`input "${input.name}" is given twice`);
    byName.set(input.name, input);
  }
  const missing = known.filter((n) => !byName.has(n));
  if (missing.length > 0) throw bad(`missing input(s) of ${model.name}: ${missing.join(', ')}`);
  return byName;
}

function requestedOutputs(model: ModelVersion, body: InferRequest): string[] {
  const known = model.outputs.map((o) => o.name);
  if (!body.outputs) return known;
  for (const { name } of body.outputs) {
    if (!known.includes(name))
      throw bad(`"${name}" is not an output of ${model.name}; its outputs: ${known.join(', ')}`);
  }
  return body.outputs.map((o) => o.name);
}

/** Checks an infer request against the model's metadata and builds its job; 400 on a mismatch. */
export function planInfer(
  model: ModelVersion,
  body: InferRequest,
  maxInstances: number,
): InferPlan {
  const byName = inputsByName(model, body.inputs);
  const path = batchable(model) ? 'rows' : 'direct';
  // The instance count is known from the shape: refuse too many before reading any value.
  const asked = byName.get(model.inputs[0]?.name ?? '')?.shape[0] ?? 1;
  if (path === 'rows' && asked > maxInstances)
    throw bad(`at most ${maxInstances} instances per request, got ${asked}`);
  const tensors = model.inputs.map((spec) => ({
    name: spec.name,
    ...checkInput(spec, byName.get(spec.name) as InferInput),
  }));
  const outputs = requestedOutputs(model, body);
  const rows = tensors[0]?.shape[0] ?? 1;
  const hashed = tensors.map((t) => ({
    ...t,
    data: typedArrayOf(t.datatype as FeedableDatatype, t.data),
  }));
  const hash = tensorHash(model.name, model.version, path, hashed);
  const base = { model: model.name, version: model.version, format: 'raw', single: false } as const;
  const first = tensors[0];
  const data: JobSpec['data'] =
    path === 'rows' && first
      ? { ...base, rows, values: first.data }
      : {
          ...base,
          rows,
          values: [],
          tensors: Object.fromEntries(tensors.map(({ name, ...t }) => [name, t])),
        };
  return { model, spec: { data, hash }, path, rows, outputs };
}

function outputTensors(plan: InferPlan, result: PredictJobResult): Record<string, RawTensor> {
  const per = result.results.map((r) => ('outputs' in r ? r.outputs : undefined));
  if (per.some((o) => o === undefined) || per.length === 0)
    throw new ApiError('internal_error', 'The job returned no output tensors.');
  const outputs = per as Record<string, RawTensor>[];
  if (plan.path === 'direct') return outputs[0] ?? {};
  // Row results come per instance: stack them back into [rows, ...] tensors.
  const stacked: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(outputs[0] ?? {})) {
    stacked[name] = {
      shape: [outputs.length, ...t.shape],
      datatype: t.datatype,
      data: outputs.flatMap((o) => o[name]?.data ?? []),
    };
  }
  return stacked;
}

/** The infer response for a finished job: the asked outputs, flat row-major. */
export function inferResponse(
  plan: InferPlan,
  result: PredictJobResult,
  id?: string,
): InferResponse {
  const tensors = outputTensors(plan, result);
  const outputs: InferOutput[] = plan.outputs.flatMap((name) => {
    const t = tensors[name];
    if (!t) return [];
    const data = t.datatype === 'BOOL' ? t.data.map((v) => v !== 0) : t.data;
    return [{ name, shape: t.shape, datatype: t.datatype, data }];
  });
  return {
    model_name: plan.model.name,
    model_version: plan.model.version,
    ...(id !== undefined ? { id } : {}),
    outputs,
  };
}
