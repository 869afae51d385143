import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRepository } from '../../src/shared/model-repository.js';
import { ModelPool } from '../../src/worker/inference/model-pool.js';
import { InferenceThread } from '../../src/worker/inference/sessions.js';
import { REDIS_URL, removeKeys, testLogger, uniquePrefix } from '../helpers/env.js';
import { BREAST_CANCER_ROW } from '../helpers/fixtures.js';
import {
  startApiProcess,
  startWorkerProcess,
  stopAll,
  type ApiProcess,
  type InferqProcess,
} from '../helpers/processes.js';

/** A response body as untyped JSON (tests read it loosely). */
async function json(res: Response | Promise<Response>): Promise<any> {
  return (await res).json();
}

const ROWS = 100_000;
const SAMPLES = 25;

/** Row `i`: the reference row with every feature scaled by a pseudo-random factor in [0.5, 1.5). */
function rowFor(i: number): number[] {
  let a = Math.imul(i + 1, 0x9e3779b9) >>> 0;
  return BREAST_CANCER_ROW.map((v) => {
    // mulberry32: deterministic, so the test can rebuild any row for the online comparison
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    return Number((v * (0.5 + r)).toPrecision(6));
  });
}

/** The NDJSON upload, built before the clock starts so the test's own work is not timed. */
function uploadBody(rows: number): Buffer {
  const lines = Array.from({ length: rows }, (_, i) =>
    JSON.stringify({ id: `row-${i}`, features: rowFor(i) }),
  );
  return Buffer.from(lines.join('\n') + '\n');
}

/** The body sent as a stream of 64 KiB chunks, as a producer reading a file would. */
function streamOf(body: Buffer): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= body.length) return controller.close();
      controller.enqueue(body.subarray(offset, (offset += 65_536)));
    },
  });
}

/** Reads an NDJSON response line by line, handing each raw line to `onLine`. */
async function eachLine(res: Response, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let rest = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    rest += decoder.decode(chunk, { stream: true });
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) if (part) onLine(part);
  }
  if (rest.trim()) onLine(rest);
}

describe('a 100,000-row NDJSON batch through real inferq api and worker processes', () => {
  const prefix = uniquePrefix('b100k');
  const env = {
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    WORKER_METRICS_PORT: '0',
  };
  let api: ApiProcess | undefined;
  let worker: InferqProcess | undefined;

  beforeAll(async () => {
    [api, worker] = await Promise.all([startApiProcess(env), startWorkerProcess(env)]);
  });

  afterAll(async () => {
    await stopAll([api, worker]);
    await removeKeys(prefix);
  });

  it('returns every row in order, equal to online predictions for sampled rows', async () => {
    const base = api!.url;
    const body = uploadBody(ROWS);
    const started = performance.now();
    const res = await fetch(`${base}/v1/batches?model=breast-cancer`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: streamOf(body),
      duplex: 'half',
    });
    expect(res.status).toBe(202);
    const { id, total } = await json(res);
    expect(total).toBe(ROWS);
    const uploadedMs = performance.now() - started;

    const results = await fetch(`${base}/v1/batches/${id}/results`);
    expect(results.status).toBe(200);
    let count = 0;
    const sampled = new Map<number, any>();
    const every = Math.floor(ROWS / SAMPLES);
    await eachLine(results, (line) => {
      // A prefix check per line keeps the client cheap; sampled lines are parsed in full.
      if (!line.startsWith(`{"index":${count},"id":"row-${count}","status":"completed"`)) {
        throw new Error(`line ${count} is out of order or failed: ${line}`);
      }
      if (count % every === 7) sampled.set(count, JSON.parse(line));
      count++;
    });
    const totalMs = performance.now() - started;
    expect(count).toBe(ROWS);

    const view = await json(fetch(`${base}/v1/batches/${id}`));
    expect(view).toMatchObject({ status: 'completed', completed: ROWS, failed: 0, pending: 0 });
    console.log(
      `100,000-row batch end to end: ${Math.round(ROWS / (totalMs / 1000))} rows/s ` +
        `(upload ${Math.round(uploadedMs)} ms, total ${Math.round(totalMs)} ms)`,
    );

    for (const [index, line] of sampled) {
      const online = await json(
        fetch(`${base}/v1/models/breast-cancer/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ features: rowFor(index) }),
        }),
      );
      expect(online.cached).toBe(false);
      expect(line.label).toBe(online.label);
      expect(line.probabilities[0]).toBeCloseTo(online.probabilities[0], 6);
    }
  });

  it('measures raw in-process inference of the same model at batch 1000, for comparison', async () => {
    const logger = testLogger('bench');
    const thread = new InferenceThread({ logger });
    try {
      const pool = new ModelPool({ thread, logger, maxBatchSize: 1000, maxBatchDelayMs: 0 });
      const repository = await ModelRepository.scan('models', 3);
      const model = repository.resolve('breast-cancer');
      await pool.load(model);
      const loaded = pool.get(model.name, model.version)!;
      const values = new Float32Array(1000 * model.rowSize);
      for (let r = 0; r < 1000; r++) values.set(rowFor(r), r * model.rowSize);
      await loaded.batcher.submit(1000, values); // warm-up
      const started = performance.now();
      const runs = Array.from({ length: ROWS / 1000 }, () => loaded.batcher.submit(1000, values));
      await Promise.all(runs);
      const rowsPerS = ROWS / ((performance.now() - started) / 1000);
      console.log(
        `raw in-process inference (${model.name} ${model.version}, batch 1000): ${Math.round(rowsPerS)} rows/s`,
      );
      expect(rowsPerS).toBeGreaterThan(0);
    } finally {
      await thread.close();
    }
  });
});
