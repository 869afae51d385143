import { setTimeout as sleep } from 'node:timers/promises';
import type { BatchView, InferqClient } from '../client/index.js';
import { CliError } from './cli-error.js';
import type { LineSink } from './output.js';
import { createProgress, type ProgressDisplay } from './progress.js';

/** What following a batch to its end wrote. */
export interface FollowResult {
  written: number;
  failed: number;
  ms: number;
}

const POLL_MS = 500;

function ended(view: BatchView): boolean {
  return view.status === 'completed' || view.status === 'cancelled';
}

async function pollProgress(
  client: InferqClient,
  id: string,
  display: ProgressDisplay,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const view = await client.getBatch(id, { signal });
      display.update(view);
      if (ended(view)) return;
    } catch {
      // Progress is cosmetic: the results stream decides success; a failed poll just retries.
    }
    await sleep(POLL_MS, undefined, { signal }).catch(() => undefined);
  }
}

// The batch's SSE progress events drive the display; polling takes over if the feed breaks.
async function followProgress(
  client: InferqClient,
  id: string,
  display: ProgressDisplay,
  signal: AbortSignal,
): Promise<void> {
  try {
    for await (const event of client.batchEvents(id, { signal })) {
      display.update(event.data);
      if (event.event === 'done') return;
    }
  } catch {
    // Fall through to polling.
  }
  await pollProgress(client, id, display, signal);
}

/**
 * Streams a batch's results into `sink` in submission order while a progress display (bar on a
 * terminal, plain lines otherwise) follows GET /v1/batches/{id}.
 */
export async function followBatch(
  client: InferqClient,
  id: string,
  total: number,
  sink: LineSink,
): Promise<FollowResult> {
  const started = Date.now();
  const display = createProgress({ label: `batch ${id}`, total });
  const polling = new AbortController();
  const poller = followProgress(client, id, display, polling.signal);
  let written = 0;
  let failed = 0;
  try {
    for await (const line of client.batchResults(id)) {
      await sink.writeLine(JSON.stringify(line));
      written++;
      if (line.status !== 'completed') failed++;
    }
    display.update({ completed: written - failed, failed, total });
  } finally {
    polling.abort();
    await poller;
    display.stop();
    await sink.close();
  }
  if (written < total)
    throw new CliError(`the results of batch ${id} ended after ${written} of ${total} rows`);
  return { written, failed, ms: Date.now() - started };
}
