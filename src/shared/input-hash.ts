import { createHash } from 'node:crypto';

/**
 * Content hash of one prediction input: model, version, row count and the canonical float32
 * bytes of the values. The same in every process (no per-process seed), so it keys the shared
 * result cache and BullMQ's deduplication.
 */
export function inputHash(
  model: string,
  version: string,
  rows: number,
  values: Float32Array,
): string {
  return createHash('sha256')
    .update(`${model}\0${version}\0${rows}\0`)
    .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex');
}
