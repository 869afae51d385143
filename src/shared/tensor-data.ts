import { createHash } from 'node:crypto';
import type { Datatype, TensorSpec } from './onnx-metadata.js';
import { FLOAT32_MAX } from './public-types.js';

/** onnxruntime type names of the datatypes a JSON request can carry (not BYTES nor FP16). */
export const ORT_TYPES = {
  FP32: 'float32',
  FP64: 'float64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  BOOL: 'bool',
} as const satisfies Partial<Record<Datatype, string>>;

/** A datatype that can be sent as JSON numbers (or booleans) and fed to a model. */
export type FeedableDatatype = keyof typeof ORT_TYPES;

/** The typed arrays onnxruntime takes for the feedable datatypes. */
export type TensorArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

/** Whether `datatype` can be sent as JSON and fed to a model. */
export function isFeedable(datatype: string): datatype is FeedableDatatype {
  return Object.hasOwn(ORT_TYPES, datatype);
}

// 64-bit integers travel as JSON numbers, so only the exactly representable ones are taken.
const INT_RANGES: Partial<Record<FeedableDatatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32_768, 32_767],
  INT32: [-2_147_483_648, 2_147_483_647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT8: [0, 255],
  UINT16: [0, 65_535],
  UINT32: [0, 4_294_967_295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

/** Why `value` cannot be an element of a `datatype` tensor, or undefined when it can. */
export function elementProblem(datatype: FeedableDatatype, value: unknown): string | undefined {
  if (datatype === 'BOOL') return typeof value === 'boolean' ? undefined : 'must be true or false';
  if (typeof value !== 'number') return 'must be a number';
  if (!Number.isFinite(value)) return 'must be a finite number';
  if (datatype === 'FP32')
    return Math.abs(value) <= FLOAT32_MAX ? undefined : 'is outside the FP32 range';
  if (datatype === 'FP64') return undefined;
  const range = INT_RANGES[datatype];
  if (!Number.isInteger(value)) return `must be an integer (${datatype})`;
  if (range && (value < range[0] || value > range[1])) return `is outside the ${datatype} range`;
  return undefined;
}

/** The typed array onnxruntime takes for `values` of `datatype` (booleans as 0/1). */
export function typedArrayOf(datatype: FeedableDatatype, values: readonly number[]): TensorArray {
  switch (datatype) {
    case 'FP32':
      return Float32Array.from(values);
    case 'FP64':
      return Float64Array.from(values);
    case 'INT8':
      return Int8Array.from(values);
    case 'INT16':
      return Int16Array.from(values);
    case 'INT32':
      return Int32Array.from(values);
    case 'INT64':
      return BigInt64Array.from(values, (v) => BigInt(v));
    case 'UINT8':
    case 'BOOL':
      return Uint8Array.from(values);
    case 'UINT16':
      return Uint16Array.from(values);
    case 'UINT32':
      return Uint32Array.from(values);
    case 'UINT64':
      return BigUint64Array.from(values, (v) => BigInt(v));
  }
}

/** Number of elements of a tensor of `shape`. */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Why `shape` does not fit the model's `spec` (-1 there means any size), or undefined. */
export function shapeProblem(spec: TensorSpec, shape: readonly number[]): string | undefined {
  const wanted = `[${spec.shape.join(', ')}]`;
  if (shape.length !== spec.shape.length)
    return `shape [${shape.join(', ')}] has ${shape.length} dimensions, the model takes ${spec.shape.length}: ${wanted} (-1 = any size)`;
  const i = spec.shape.findIndex((d, k) => d >= 0 && shape[k] !== d);
  if (i >= 0)
    return `dimension ${i} of shape [${shape.join(', ')}] must be ${spec.shape[i]}: the model takes ${wanted} (-1 = any size)`;
  return undefined;
}

/** A named input tensor, for hashing. */
export interface HashedTensor {
  name: string;
  datatype: string;
  shape: readonly number[];
  data: TensorArray;
}

/**
 * Content hash of a tensor request: model, version, a tag for how results are shaped, and each
 * input's name, datatype, shape and canonical bytes. Keys the result cache and deduplication.
 */
export function tensorHash(
  model: string,
  version: string,
  tag: string,
  tensors: readonly HashedTensor[],
): string {
  const hash = createHash('sha256').update(`tensors\0${model}\0${version}\0${tag}\0`);
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    hash.update(`${t.name}\0${t.datatype}\0${t.shape.join(',')}\0`);
    hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return hash.digest('hex');
}
