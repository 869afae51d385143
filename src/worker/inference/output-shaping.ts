import type { InstanceResult, RawTensor } from '../../shared/jobs.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import type { Datatype } from '../../shared/onnx-metadata.js';
import type { ThreadTensor } from './thread-protocol.js';

/** Raised when a model returns NaN or Infinity; the job fails with model_output_invalid. */
export class ModelOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelOutputError';
  }
}

const ORT_TO_DATATYPE: Record<string, Datatype> = {
  float32: 'FP32',
  float64: 'FP64',
  float16: 'FP16',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};

/** Protocol datatype name of an onnxruntime tensor type. */
export function datatypeOf(ortType: string): Datatype {
  return ORT_TO_DATATYPE[ortType] ?? 'BYTES';
}

function toNumbers(data: ThreadTensor['data']): number[] {
  const out = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
  return out;
}

function assertFinite(name: string, values: number[]): void {
  for (const v of values) {
    if (!Number.isFinite(v)) throw new ModelOutputError(`output "${name}" contains ${v}`);
  }
}

function rowsOf(t: ThreadTensor, rows: number): number[][] {
  const values = toNumbers(t.data);
  const per = values.length / rows;
  return Array.from({ length: rows }, (_, i) => values.slice(i * per, (i + 1) * per));
}

function pickFloatOutput(
  outputs: Record<string, ThreadTensor>,
  preferred: string,
): [string, ThreadTensor] {
  const named = outputs[preferred];
  if (named) return [preferred, named];
  const found = Object.entries(outputs).find(([, t]) => t.type.startsWith('float'));
  if (!found) throw new ModelOutputError('the model has no floating-point output');
  return found;
}

function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++)
    if ((values[i] ?? -Infinity) > (values[best] ?? -Infinity)) best = i;
  return best;
}

/** Shapes one job's output slices into per-instance results by the model's task. */
export function toInstanceResults(
  model: ModelVersion,
  outputs: Record<string, ThreadTensor>,
  rows: number,
  format: 'task' | 'raw',
): InstanceResult[] {
  const task = format === 'raw' ? 'raw' : model.task;
  if (task === 'classification') {
    const [name, tensor] = pickFloatOutput(outputs, 'probabilities');
    return rowsOf(tensor, rows).map((probabilities) => {
      assertFinite(name, probabilities);
      const prediction = argmax(probabilities);
      const label = model.labels?.[prediction];
      const confidence = probabilities[prediction] ?? 0;
      return label === undefined
        ? { prediction, confidence, probabilities }
        : { prediction, label, confidence, probabilities };
    });
  }
  if (task === 'regression') {
    const [name, tensor] = pickFloatOutput(outputs, 'prediction');
    return rowsOf(tensor, rows).map((values) => {
      assertFinite(name, values);
      return { prediction: values.length === 1 ? (values[0] ?? 0) : values };
    });
  }
  const perRow = Object.entries(outputs).map(([name, t]) => {
    const data = rowsOf(t, rows);
    if (t.type.startsWith('float')) data.forEach((d) => assertFinite(name, d));
    return { name, t, data };
  });
  return Array.from({ length: rows }, (_, i) => {
    const result: Record<string, RawTensor> = {};
    for (const { name, t, data } of perRow) {
      result[name] = { shape: t.dims.slice(1), datatype: datatypeOf(t.type), data: data[i] ?? [] };
    }
    return { outputs: result };
  });
}
