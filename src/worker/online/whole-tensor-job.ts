import { UnrecoverableError } from 'bullmq';
import { formatFailure } from '../../shared/errors.js';
import type { InstanceResult, JobTensor, RawTensor } from '../../shared/jobs.js';
import type { ModelVersion } from '../../shared/model-repository.js';
import {
  elementCount,
  elementProblem,
  isFeedable,
  ORT_TYPES,
  shapeProblem,
  typedArrayOf,
} from '../../shared/tensor-data.js';
import type { BatchSlice } from '../inference/micro-batcher.js';
import type { ModelPool } from '../inference/model-pool.js';
import { datatypeOf, ModelOutputError } from '../inference/output-shaping.js';
import type { ThreadTensor } from '../inference/thread-protocol.js';

const invalid = (message: string) =>
  new UnrecoverableError(formatFailure('validation_error', message));

function feedOf(model: ModelVersion, name: string, t: JobTensor | undefined): ThreadTensor {
  const spec = model.inputs.find((i) => i.name === name);
  if (!spec || !t) throw invalid(`input "${name}" does not match the model's inputs`);
  const { datatype } = t;
  if (datatype !== spec.datatype || !isFeedable(datatype))
    throw invalid(`input "${name}" must be ${spec.datatype}, got ${datatype}`);
  const problem = shapeProblem(spec, t.shape);
  if (problem) throw invalid(`input "${name}": ${problem}`);
  if (!Array.isArray(t.data) || t.data.length !== elementCount(t.shape))
    throw invalid(`input "${name}" must hold ${elementCount(t.shape)} values`);
  // Booleans travel as 0/1; everything else is checked as its own datatype.
  const check = datatype === 'BOOL' ? 'UINT8' : datatype;
  if (t.data.some((v) => elementProblem(check, v) !== undefined))
    throw invalid(`input "${name}" holds a value that is not a valid ${datatype}`);
  return { type: ORT_TYPES[datatype], data: typedArrayOf(datatype, t.data), dims: [...t.shape] };
}

/** Checks a direct job's tensors against the model's inputs and builds the session feeds. */
export function directFeeds(
  model: ModelVersion,
  tensors: Record<string, JobTensor>,
): Record<string, ThreadTensor> {
  const names = Object.keys(tensors);
  const expected = model.inputs.map((i) => i.name);
  if (names.length !== expected.length || names.some((n) => !expected.includes(n)))
    throw invalid(
      `the job's inputs [${names.join(', ')}] are not the model's [${expected.join(', ')}]`,
    );
  return Object.fromEntries(expected.map((name) => [name, feedOf(model, name, tensors[name])]));
}

/** Runs a job's whole tensors in one session run of its own (no batching). */
export async function runDirectJob(
  pool: ModelPool,
  model: ModelVersion,
  tensors: Record<string, JobTensor>,
): Promise<BatchSlice> {
  const feeds = directFeeds(model, tensors);
  try {
    const run = await pool.runDirect(model, feeds);
    const rows = Object.values(feeds)[0]?.dims[0] ?? 1;
    return { outputs: run.outputs, ms: run.ms, batchSize: rows };
  } catch (err) {
    // Transient until proven otherwise: BullMQ retries with backoff, then fails with this text.
    throw new Error(
      formatFailure('inference_failed', `Inference failed: ${(err as Error).message}`),
    );
  }
}

/** The one result of a direct run: every output tensor whole, NaN and Infinity refused. */
export function wholeTensorResults(outputs: Record<string, ThreadTensor>): InstanceResult[] {
  const result: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(outputs)) {
    const data = Array.from(t.data as ArrayLike<number | bigint>, Number);
    if (t.type.startsWith('float') && !data.every(Number.isFinite))
      throw new ModelOutputError(`output "${name}" contains a non-finite value`);
    result[name] = { shape: [...t.dims], datatype: datatypeOf(t.type), data };
  }
  return [{ outputs: result }];
}
