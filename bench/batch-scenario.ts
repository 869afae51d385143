import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { ndjsonFilePipeline } from './limits.js';
import { runBatch, writeRowsFile, type CliBatchResult } from './lib/cli-batch.js';
import { inferqEnv, startApi, startWorker, warmUp } from './lib/deployment.js';
import type { Processes } from './lib/procs.js';
import type { RowNumbers } from './lib/rows.js';

/** The CLI batch beside the in-process pipeline over the same file, in one run. */
export interface CliBatchScenario extends CliBatchResult {
  /** In-process parse, infer, serialise of the same file: the mean of a run before and after. */
  pipelineRowsPerSec: number;
  pipelineRuns: number[];
  /** rowsPerSec / pipelineRowsPerSec. */
  ratio: number;
  /** The same file through plain HTTP (no client-side parsing): the server's own rate. */
  http: CliBatchResult;
  /** http.rowsPerSec / pipelineRowsPerSec. */
  httpRatio: number;
}

/** What the scenario needs from the bench. */
export interface CliBatchSetup {
  procs: Processes;
  redisUrl: string;
  admin: Redis;
  rows: RowNumbers;
  log: (msg: string) => void;
  /** Where the API, worker and CLI write CPU profiles (`node --cpu-prof`); none when absent. */
  profileDir?: string;
}

/**
 * Writes a file of `rows` rows, measures the in-process pipeline over it, then `inferq batch`
 * through fresh API and worker processes (so their peak memory is this batch's), then the
 * pipeline again. Every process is stopped by pid, also on failure.
 */
export async function cliBatch(s: CliBatchSetup, rows: number): Promise<CliBatchScenario> {
  const dir = await mkdtemp(join(tmpdir(), 'inferq-bench-rows-'));
  const file = join(dir, 'rows.jsonl');
  const nodeArgs = s.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${s.profileDir}`] : [];
  try {
    s.log(`cli batch: writing ${rows} rows`);
    await writeRowsFile(file, rows, s.rows.take(rows));
    s.log('cli batch: in-process pipeline over the file');
    const before = await ndjsonFilePipeline('breast-cancer', file);
    const env = inferqEnv(s.redisUrl, '{benchcli}');
    const worker = startWorker(s.procs, env, nodeArgs);
    const api = await startApi(s.procs, env, nodeArgs);
    let result: CliBatchResult;
    let http: CliBatchResult;
    try {
      await warmUp(api.url, s.rows, 10);
      const options = {
        procs: s.procs,
        apiUrl: api.url,
        apiPid: api.child.pid,
        workerPid: worker.pid,
        admin: s.admin,
        file,
        rows,
        nodeArgs,
      };
      s.log(`cli batch: inferq batch ${rows} rows -o results.jsonl`);
      result = await runBatch(options, 'cli');
      s.log(`cli batch: the same file through plain HTTP (the server alone)`);
      http = await runBatch(options, 'http');
    } finally {
      await s.procs.stop(api.child);
      await s.procs.stop(worker);
    }
    s.log('cli batch: in-process pipeline again');
    const after = await ndjsonFilePipeline('breast-cancer', file);
    const pipelineRowsPerSec = (before.rowsPerSec + after.rowsPerSec) / 2;
    return {
      ...result,
      pipelineRowsPerSec,
      pipelineRuns: [before.rowsPerSec, after.rowsPerSec],
      ratio: result.rowsPerSec / pipelineRowsPerSec,
      http,
      httpRatio: http.rowsPerSec / pipelineRowsPerSec,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
