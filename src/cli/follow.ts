import { setTimeout as sleep } from 'node:timers/promises';
import { InferqError, type BatchView, type InferqClient } from '../client/index.js';
import { CliError, describeError } from './cli-error.js';
import { resultHead, resultText, type ResultSink } from './output.js';
import { createProgress, type ProgressDisplay } from './progress.js';
import { backoffMs, isDropped, MAX_ATTEMPTS } from './retry.js';

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

/** How far the results have been written. */
interface Written {
  written: number;
  failed: number;
}

/**
 * Reads GET /v1/batches/{id}/results into `sink` from line `done.written` on. A resumed stream
 * starts at the top again (the server has no offset parameter): lines already written are
 * skipped by their index, so the file holds each line once, in order.
 */
async function copyResults(
  client: InferqClient,
  id: string,
  sink: ResultSink,
  done: Written,
): Promise<void> {
  if (sink.writeBytes) return copyResultBytes(client, id, sink.writeBytes.bind(sink), done);
  for await (const text of client.batchResultLines(id)) {
    const result = resultText(text);
    if (!takes(id, done, result.index, result.failed)) continue;
    await sink.write(result);
  }
}

/** Whether the line of `index` is the next to write (counted if so); throws on a gap. */
function takes(id: string, done: Written, index: number, failed: boolean): boolean {
  if (index < done.written) return false;
  if (index !== done.written)
    throw new CliError(`the results of batch ${id} skipped from row ${done.written} to ${index}`);
  done.written++;
  if (failed) done.failed++;
  return true;
}

const NEWLINE = Buffer.from('\n');

/**
 * copyResults for a sink that keeps the server's text: each block of lines is checked line by
 * line from its bytes (index and status; a line of another shape is read as text) and the runs
 * of lines to keep are written as they came, never decoded.
 */
async function copyResultBytes(
  client: InferqClient,
  id: string,
  write: (lines: Uint8Array) => Promise<void>,
  done: Written,
): Promise<void> {
  for await (const block of client.batchResultBlocks(id)) {
    const bytes = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    let run = -1;
    let unended = false;
    const flush = async (upTo: number) => {
      if (run >= 0) await write(bytes.subarray(run, upTo));
      run = -1;
    };
    for (let start = 0; start < bytes.length;) {
      const newline = bytes.indexOf(0x0a, start);
      const end = newline < 0 ? bytes.length : newline;
      const next = end + 1;
      const head =
        end === start ? undefined : (resultHead(bytes, start, end) ?? lineText(bytes, start, end));
      const taken = head !== undefined && takes(id, done, head.index, head.failed);
      if (taken && run < 0) run = start;
      if (!taken) await flush(start);
      // The stream's last line may come without its newline.
      unended = taken && newline < 0;
      start = next;
    }
    await flush(bytes.length);
    if (unended) await write(NEWLINE);
  }
}

function lineText(bytes: Buffer, start: number, end: number) {
  const text = bytes.toString('utf8', start, end);
  return text.trim().length === 0 ? undefined : resultText(text);
}

/**
 * Copies every result line into `sink`; a stream that breaks (or ends early) is read again and
 * resumes after the last line written. Gives up after MAX_ATTEMPTS breaks in a row.
 */
async function copyAllResults(
  client: InferqClient,
  id: string,
  total: number,
  sink: ResultSink,
  notice: (line: string) => void,
): Promise<Written> {
  const done: Written = { written: 0, failed: 0 };
  for (let breaks = 0; ;) {
    const before = done.written;
    let cause: unknown;
    try {
      await copyResults(client, id, sink, done);
      if (done.written >= total) return done;
      cause = new CliError(
        `the results of batch ${id} ended after ${done.written} of ${total} rows`,
      );
    } catch (err) {
      if (!(err instanceof InferqError) || !isDropped(err)) throw err;
      cause = err;
    }
    breaks = done.written > before ? 1 : breaks + 1;
    if (breaks >= MAX_ATTEMPTS) throw cause;
    notice(
      `batch ${id}: the results stream broke after ${done.written} of ${total} rows ` +
        `(${describeError(cause, client.url)}); resuming after row ${done.written}`,
    );
    await sleep(backoffMs(breaks));
  }
}

/**
 * Streams a batch's results into `sink` in submission order while a progress display (bar on a
 * terminal, plain lines otherwise) follows GET /v1/batches/{id}. A broken results stream is
 * resumed; `notice` tells the user so.
 */
export async function followBatch(
  client: InferqClient,
  id: string,
  total: number,
  sink: ResultSink,
  notice: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<FollowResult> {
  const started = Date.now();
  const display = createProgress({ label: `batch ${id}`, total });
  const polling = new AbortController();
  const poller = followProgress(client, id, display, polling.signal);
  let done: Written;
  try {
    done = await copyAllResults(client, id, total, sink, notice);
    display.update({ completed: done.written - done.failed, failed: done.failed, total });
  } finally {
    polling.abort();
    await poller;
    display.stop();
    await sink.close();
  }
  return { ...done, ms: Date.now() - started };
}
