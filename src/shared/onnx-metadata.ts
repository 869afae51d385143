import { readFile } from 'node:fs/promises';
import protoPkg from 'onnx-proto';
import type { Datatype, TensorSpec } from './public-types.js';

const { onnx } = protoPkg;

export type { Datatype, TensorSpec } from './public-types.js';

/** Inputs and outputs of an ONNX graph. */
export interface OnnxSignature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

// ONNX TensorProto.DataType numbers -> protocol names.
const ELEMENT_TYPES: Record<number, Datatype> = {
  1: 'FP32',
  2: 'UINT8',
  3: 'INT8',
  4: 'UINT16',
  5: 'INT16',
  6: 'INT32',
  7: 'INT64',
  8: 'BYTES',
  9: 'BOOL',
  10: 'FP16',
  11: 'FP64',
  12: 'UINT32',
  13: 'UINT64',
};

type ValueInfo = protoPkg.onnx.IValueInfoProto;

function toSpec(info: ValueInfo): TensorSpec {
  const tensor = info.type?.tensorType;
  const name = info.name ?? '';
  if (!tensor) throw new Error(`ONNX value "${name}" is not a tensor`);
  const datatype = ELEMENT_TYPES[tensor.elemType ?? 0];
  if (!datatype)
    throw new Error(`ONNX value "${name}" has unsupported element type ${tensor.elemType}`);
  const shape = (tensor.shape?.dim ?? []).map((d) => {
    // protobufjs decodes int64 as a number, or as a Long object when long.js is installed.
    const v: unknown = d.dimValue;
    const n = typeof v === 'number' ? v : v ? Number((v as { toString(): string }).toString()) : 0;
    return n > 0 ? n : -1;
  });
  return { name, datatype, shape };
}

/** Reads the input and output signature of an ONNX file without loading onnxruntime. */
export async function readOnnxSignature(path: string): Promise<OnnxSignature> {
  const bytes = await readFile(path);
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) throw new Error(`${path} has no graph`);
  // Before IR 4, initializers were also listed as graph inputs; they are not fed by callers.
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name ?? '')).map(toSpec);
  const outputs = (graph.output ?? []).map(toSpec);
  if (inputs.length === 0) throw new Error(`${path} has no inputs`);
  return { inputs, outputs };
}
