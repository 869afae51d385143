import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';
import { exited } from '../../src/cli/children.js';
import { HIT_ROW } from './rows.js';
import { spawnInferqWith, type Processes } from './procs.js';
import { redisSnapshot } from './redis-info.js';

/** When each phase of a CLI batch ended, seconds from the start of `inferq batch`. */
export interface BatchSplit {
  /** The 202 arrived: the whole file was uploaded and checked. */
  uploadEndS: number;
  /** The first result line reached the output file. */
  firstResultS: number;
  /** The last row finished on a worker (the batch's finishedAt). */
  runEndS: number;
  /** The CLI exited after writing the last result line. */
  downloadEndS: number;
}

/** Outcome of one `inferq batch` run from a file to a results file. */
export interface CliBatchResult {
  rows: number;
  fileMb: number;
  seconds: number;
  rowsPerSec: number;
  split: BatchSplit;
  /** Peak resident memory while the batch ran (sampled every 50 ms), MB. */
  peakRssMb: { cli: number; api: number; worker: number };
  /**
   * CPU seconds each process used during the run (/proc utime + stime; the CLI's as last sampled,
   * NaN over plain HTTP; Redis from INFO cpu): steadier than rows/s on a shared machine.
   */
  cpuS: { cli: number; api: number; worker: number; redis: number };
  /** Redis used_memory at its highest while the batch ran, over what it was before, MB. */
  redisPeakMb: number;
  /** Redis used_memory_peak after the run over used_memory before it, MB (an upper bound). */
  redisPeakCounterMb: number;
  resultLines: number;
}

/**
 * Writes `rows` NDJSON rows of 30 breast-cancer features to `path`: the README's row with an
 * integer-valued feature (area worst, exact in float32) set to the row's number, so that every
 * row is a distinct input, and the others varied around the README values.
 */
export async function writeRowsFile(path: string, rows: number, first: number): Promise<number> {
  const out = createWriteStream(path);
  // 400 variants of each feature, formatted once: the file is written in seconds, not minutes.
  const variants = HIT_ROW.map((v) =>
    Array.from({ length: 400 }, (_, j) =>
      JSON.stringify(Number((v * (0.8 + j / 1000)).toPrecision(5))),
    ),
  );
  let bytes = 0;
  let text = '';
  for (let k = 0; k < rows; k++) {
    const features = variants.map((column, i) =>
      i === 23 ? String(first + k) : (column[(k * 31 + i * 17) % 400] ?? '0'),
    );
    text += `{"id":"r${k}","features":[${features.join(',')}]}\n`;
    if (text.length > 1 << 20) {
      bytes += text.length;
      if (!out.write(text)) await once(out, 'drain');
      text = '';
    }
  }
  bytes += text.length;
  out.end(text);
  await once(out, 'finish');
  return bytes;
}

async function rssMb(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0; // gone
  }
}

/** CPU seconds (user + system) a process used so far; NaN once it is gone. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid) return NaN;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** Linux USER_HZ: /proc reports CPU time in these ticks. */
const CLOCK_TICKS = 100;

async function usedMemoryMb(redis: Redis, field = 'used_memory'): Promise<number> {
  const info = String(await redis.call('INFO', 'memory'));
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN) / 2 ** 20;
}

/** Counts the result lines and checks that they come in input order, all completed. */
async function checkResults(path: string, rows: number): Promise<number> {
  let lines = 0;
  for await (const line of createInterface({ input: createReadStream(path) })) {
    if (!line.startsWith(`{"index":${lines},"id":"r${lines}","status":"completed"`)) {
      throw new Error(`result line ${lines + 1} is out of order or failed: ${line.slice(0, 200)}`);
    }
    lines++;
  }
  if (lines !== rows) throw new Error(`${lines} result lines for ${rows} rows`);
  return lines;
}

/** What `runBatch` needs. */
export interface CliBatchOptions {
  procs: Processes;
  apiUrl: string;
  apiPid: number | undefined;
  workerPid: number | undefined;
  /** The bench's own connection to the deployment's Redis (INFO only). */
  admin: Redis;
  file: string;
  rows: number;
  /** Node flags of the CLI process (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
}

/** How the file reaches the API and the results come back. */
export type BatchClient = 'cli' | 'http';

interface Driven {
  /** Resolves once the client is done; rejects when it failed. */
  done: Promise<void>;
  pid: number | undefined;
}

// `inferq batch` as a child process: it prints the batch id when the 202 arrives.
function driveCli(o: CliBatchOptions, out: string, onQueued: (id: string) => void): Driven {
  const child = o.procs.track(
    spawnInferqWith(
      o.nodeArgs ?? [],
      ['batch', o.file, '-m', 'breast-cancer', '-o', out, '--url', o.apiUrl],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = /^batch (\S+) queued/.exec(line);
    if (m?.[1]) onQueued(m[1]);
  });
  const done = exited(child).then((code) => {
    if (code !== 0) throw new Error(`inferq batch exited ${code}`);
  });
  return { done, pid: child.pid };
}

// The file's bytes streamed up as they are, the results' bytes streamed to the file: what the
// server does without any client-side parsing (fetch in this process).
function driveHttp(o: CliBatchOptions, out: string, onQueued: (id: string) => void): Driven {
  const done = (async () => {
    const res = await fetch(`${o.apiUrl}/v1/batches?model=breast-cancer`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: Readable.toWeb(createReadStream(o.file, { highWaterMark: 1 << 16 })) as ReadableStream,
      duplex: 'half',
    });
    if (res.status !== 202) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    onQueued(id);
    const results = await fetch(`${o.apiUrl}/v1/batches/${id}/results`);
    if (!results.body) throw new Error(`results answered ${results.status}`);
    await pipeline(Readable.fromWeb(results.body as never), createWriteStream(out));
  })();
  return { done, pid: undefined };
}

/**
 * Sends the file as a batch through `client` (`inferq batch <file> -m breast-cancer -o <out>`,
 * or plain HTTP) and times it: the 202, the first byte of the results file, the batch's
 * finishedAt and the end of the download; memory of every process is sampled meanwhile.
 */
export async function runBatch(o: CliBatchOptions, client: BatchClient): Promise<CliBatchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'inferq-bench-out-'));
  const out = join(dir, 'results.jsonl');
  const redisBefore = await usedMemoryMb(o.admin);
  const peak = { cli: 0, api: 0, worker: 0, redis: redisBefore };
  const [apiCpu0, workerCpu0, redis0] = await Promise.all([
    cpuSeconds(o.apiPid),
    cpuSeconds(o.workerPid),
    redisSnapshot(o.admin),
  ]);
  let cliCpu = NaN;
  const startedMs = Date.now();
  const t0 = performance.now();
  let batchId: string | undefined;
  let uploadEndS = NaN;
  let firstResultS = NaN;
  const onQueued = (id: string) => {
    [batchId, uploadEndS] = [id, (performance.now() - t0) / 1000];
  };
  const driven = client === 'cli' ? driveCli(o, out, onQueued) : driveHttp(o, out, onQueued);
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [cli, api, worker, redis] = await Promise.all([
        rssMb(driven.pid),
        rssMb(o.apiPid),
        rssMb(o.workerPid),
        usedMemoryMb(o.admin),
      ]);
      peak.cli = Math.max(peak.cli, cli);
      peak.api = Math.max(peak.api, api);
      peak.worker = Math.max(peak.worker, worker);
      peak.redis = Math.max(peak.redis, redis);
      cliCpu = (await cpuSeconds(driven.pid)) || cliCpu;
      if (Number.isNaN(firstResultS)) {
        const size = await stat(out).then(
          (s) => s.size,
          () => 0,
        );
        if (size > 0) firstResultS = (performance.now() - t0) / 1000;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    await driven.done;
  } finally {
    sampling = false;
    await sampler;
  }
  const downloadEndS = (performance.now() - t0) / 1000;
  const redisPeakCounterMb = (await usedMemoryMb(o.admin, 'used_memory_peak')) - redisBefore;
  const [apiCpu, workerCpu, redis1] = await Promise.all([
    cpuSeconds(o.apiPid),
    cpuSeconds(o.workerPid),
    redisSnapshot(o.admin),
  ]);
  const cpuS = {
    cli: client === 'cli' ? cliCpu : NaN,
    api: apiCpu - apiCpu0,
    worker: workerCpu - workerCpu0,
    redis: redis1.cpuS - redis0.cpuS,
  };
  try {
    if (!batchId) throw new Error('no batch id');
    const view = (await (await fetch(`${o.apiUrl}/v1/batches/${batchId}`)).json()) as {
      finishedAt?: string;
    };
    const runEndS = view.finishedAt ? (Date.parse(view.finishedAt) - startedMs) / 1000 : NaN;
    const resultLines = await checkResults(out, o.rows);
    return {
      rows: o.rows,
      fileMb: (await stat(o.file)).size / 2 ** 20,
      seconds: downloadEndS,
      rowsPerSec: o.rows / downloadEndS,
      split: { uploadEndS, firstResultS, runEndS, downloadEndS },
      peakRssMb: { cli: client === 'cli' ? peak.cli : NaN, api: peak.api, worker: peak.worker },
      cpuS,
      redisPeakMb: peak.redis - redisBefore,
      redisPeakCounterMb,
      resultLines,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
