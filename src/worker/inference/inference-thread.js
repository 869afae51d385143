// @ts-check
// Runs onnxruntime sessions on a worker thread: session.run() blocks its thread for the whole
// batch (microsoft/onnxruntime#19611), so it must not run where BullMQ renews its locks.
// Plain JavaScript (type-checked through JSDoc) because Node 20 cannot apply tsx's loader to a
// worker thread's entry module; this file is loaded the same way from a checkout and from dist.
import { parentPort, workerData } from 'node:worker_threads';
import { createSession, runSession } from './ort-session.js';

/** @typedef {import('./thread-protocol.js').ThreadRequest} ThreadRequest */
/** @typedef {import('./thread-protocol.js').ThreadResponse} ThreadResponse */
/** @typedef {import('./thread-protocol.js').ThreadTensor} ThreadTensor */
/** @typedef {import('./thread-protocol.js').ThreadInit} ThreadInit */

/** @type {ThreadInit} */
const init = workerData; // eslint-disable-line @typescript-eslint/no-unsafe-assignment -- workerData is untyped by Node
/** @type {Map<string, import('onnxruntime-node').InferenceSession>} */
const sessions = new Map();
const port = parentPort;
if (!port) throw new Error('inference-thread must run as a worker thread');

/** @param {ThreadResponse} message @param {ArrayBuffer[]} [transfer] */
function reply(message, transfer = []) {
  port?.postMessage(message, transfer);
}

/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/** @param {string} key @param {string} path */
async function load(key, path) {
  sessions.set(key, await createSession(path, init.intraOpThreads));
}

/** @param {number} id @param {string} key @param {Record<string, ThreadTensor>} feeds */
async function run(id, key, feeds) {
  const session = sessions.get(key);
  if (!session) throw new Error(`model ${key} is not loaded`);
  const { outputs, ms } = await runSession(session, feeds);
  /** @type {ArrayBuffer[]} */
  const transfer = [];
  for (const tensor of Object.values(outputs)) {
    if (tensor.data.buffer instanceof ArrayBuffer) transfer.push(tensor.data.buffer);
  }
  reply({ type: 'result', id, outputs, ms }, transfer);
}

port.on('message', (/** @type {ThreadRequest} */ msg) => {
  const fail = (/** @type {unknown} */ err) =>
    reply({ type: 'error', id: msg.id, message: messageOf(err) });
  if (msg.type === 'load') {
    load(msg.key, msg.path).then(() => reply({ type: 'loaded', id: msg.id }), fail);
  } else if (msg.type === 'unload') {
    const session = sessions.get(msg.key);
    sessions.delete(msg.key);
    (session ? session.release() : Promise.resolve()).then(
      () => reply({ type: 'loaded', id: msg.id }),
      fail,
    );
  } else {
    run(msg.id, msg.key, msg.feeds).catch(fail);
  }
});
