import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import { ModelRepository, type ModelVersion } from '../src/shared/model-repository.js';
import { percentile } from './lib/stats.js';

/** Raw in-process inference at one batch size. */
export interface RawInference {
  model: string;
  batch: number;
  rowsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

function randomInput(model: ModelVersion, rows: number): ort.Tensor {
  const input = model.inputs[0];
  const width = Math.max(model.rowSize, 1);
  const data = Float32Array.from({ length: rows * width }, (_, i) => ((i * 7919) % 1000) / 100);
  return new ort.Tensor('float32', data, [rows, ...(input?.shape.slice(1) ?? [width])]);
}

/** Session options the worker uses (one intra-op thread measured fastest here). */
export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

/** onnxruntime-node in this process, no queue, no HTTP: the ceiling for each model. */
export async function rawInference(
  models: string[],
  batches: number[],
  seconds: number,
): Promise<RawInference[]> {
  const repository = await ModelRepository.scan('models', 1);
  const out: RawInference[] = [];
  for (const name of models) {
    const model = repository.resolve(name);
    const session = await ort.InferenceSession.create(model.onnxPath, SESSION_OPTIONS);
    const inputName = model.inputs[0]?.name ?? 'input';
    for (const batch of batches) {
      const feeds = { [inputName]: randomInput(model, batch) };
      for (let i = 0; i < 20; i++) await session.run(feeds);
      const times: number[] = [];
      const deadline = performance.now() + seconds * 1000;
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await session.run(feeds);
        times.push(performance.now() - t0);
      }
      const totalS = times.reduce((a, b) => a + b, 0) / 1000;
      out.push({
        model: name,
        batch,
        rowsPerSec: (times.length * batch) / totalS,
        p50Ms: percentile(times, 50),
        p99Ms: percentile(times, 99),
      });
    }
    await session.release();
  }
  return out;
}

/** NDJSON text of `rows` unique breast-cancer-width rows. */
export function ndjsonRows(rows: number, width: number, seed = 1): string {
  const lines: string[] = [];
  for (let k = 0; k < rows; k++) {
    const row = Array.from(
      { length: width },
      (_, i) => (((k + seed) * 7919 + i * 104_729) % 100_000) / 1000,
    );
    lines.push(JSON.stringify({ id: `r${k}`, features: row }));
  }
  return lines.join('\n') + '\n';
}

type Session = ort.InferenceSession;

/** Parses, infers and serialises one group of NDJSON lines; returns the output's length. */
async function pipelineChunk(
  session: Session,
  model: ModelVersion,
  chunk: string[],
  start: number,
): Promise<number> {
  const width = model.rowSize;
  const labels = model.labels ?? [];
  const values = new Float32Array(chunk.length * width);
  const ids: string[] = [];
  chunk.forEach((line, i) => {
    const item = JSON.parse(line) as { id?: string; features: number[] };
    if (item.features.length !== width) throw new Error(`line ${start + i + 1}: wrong width`);
    values.set(item.features, i * width);
    ids.push(item.id ?? '');
  });
  const result = await session.run({
    [model.inputs[0]?.name ?? 'input']: new ort.Tensor('float32', values, [chunk.length, width]),
  });
  const probs = result.probabilities?.data as Float32Array;
  const classes = probs.length / chunk.length;
  const out: string[] = [];
  for (let i = 0; i < chunk.length; i++) {
    const p = Array.from(probs.subarray(i * classes, (i + 1) * classes));
    const prediction = p.indexOf(Math.max(...p));
    out.push(
      JSON.stringify({
        index: start + i,
        id: ids[i],
        status: 'completed',
        prediction,
        label: labels[prediction],
        confidence: p[prediction],
        probabilities: p,
      }),
    );
  }
  return out.join('\n').length;
}

async function openSession(modelName: string): Promise<{ model: ModelVersion; session: Session }> {
  const repository = await ModelRepository.scan('models', 1);
  const model = repository.resolve(modelName);
  return { model, session: await ort.InferenceSession.create(model.onnxPath, SESSION_OPTIONS) };
}

/**
 * The batch ceiling: parse NDJSON rows, run inference in chunks, serialise result lines — in one
 * process, without HTTP or Redis.
 */
export async function ndjsonPipeline(
  modelName: string,
  text: string,
  chunkRows = 1000,
): Promise<{ rowsPerSec: number; rows: number }> {
  const { model, session } = await openSession(modelName);
  const started = performance.now();
  const lines = text.split('\n').filter((l) => l.length > 0);
  let outBytes = 0;
  for (let start = 0; start < lines.length; start += chunkRows) {
    outBytes += await pipelineChunk(session, model, lines.slice(start, start + chunkRows), start);
  }
  const seconds = (performance.now() - started) / 1000;
  await session.release();
  return { rowsPerSec: lines.length / seconds, rows: outBytes > 0 ? lines.length : 0 };
}

/** The same pipeline over an NDJSON file read as a stream (a file of any size). */
export async function ndjsonFilePipeline(
  modelName: string,
  path: string,
  chunkRows = 1000,
): Promise<{ rowsPerSec: number; rows: number; seconds: number }> {
  const { model, session } = await openSession(modelName);
  const started = performance.now();
  let rows = 0;
  let outBytes = 0;
  let chunk: string[] = [];
  for await (const line of createInterface({ input: createReadStream(path) })) {
    if (line.length === 0) continue;
    chunk.push(line);
    if (chunk.length === chunkRows) {
      outBytes += await pipelineChunk(session, model, chunk, rows);
      rows += chunk.length;
      chunk = [];
    }
  }
  if (chunk.length > 0) outBytes += await pipelineChunk(session, model, chunk, rows);
  rows += chunk.length;
  const seconds = (performance.now() - started) / 1000;
  await session.release();
  return { rowsPerSec: rows / seconds, rows: outBytes > 0 ? rows : 0, seconds };
}
