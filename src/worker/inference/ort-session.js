// @ts-check
// What both places that run onnxruntime sessions share: the inference thread
// (inference-thread.js) and the main thread's session of small runs (inline-session.ts). Plain
// JavaScript for the same reason as inference-thread.js: Node 20 cannot apply tsx's loader to a
// worker thread, so everything the thread imports must be JavaScript already.
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';

/** @typedef {import('./thread-protocol.js').ThreadTensor} ThreadTensor */

/**
 * Loads the ONNX file at `path` with the sessions' options.
 * @param {string} path
 * @param {number} intraOpThreads
 * @returns {Promise<ort.InferenceSession>}
 */
export function createSession(path, intraOpThreads) {
  return ort.InferenceSession.create(path, {
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/**
 * Runs `session` on `feeds`; the outputs as tensors that can cross the thread boundary.
 * @param {ort.InferenceSession} session
 * @param {Record<string, ThreadTensor>} feeds
 * @returns {Promise<{ outputs: Record<string, ThreadTensor>, ms: number }>}
 */
export async function runSession(session, feeds) {
  /** @type {Record<string, ort.Tensor>} */
  const inputs = {};
  for (const [name, t] of Object.entries(feeds)) {
    inputs[name] = new ort.Tensor(
      /** @type {'float32'} */ (t.type),
      /** @type {Float32Array} */ (t.data),
      t.dims,
    );
  }
  const started = performance.now();
  const outputs = await session.run(inputs);
  const ms = performance.now() - started;
  /** @type {Record<string, ThreadTensor>} */
  const out = {};
  for (const [name, tensor] of Object.entries(outputs)) {
    const data = /** @type {ThreadTensor['data']} */ (tensor.data);
    out[name] = { type: tensor.type, data, dims: [...tensor.dims] };
  }
  return { outputs: out, ms };
}
