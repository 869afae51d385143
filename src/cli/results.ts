import type { InferqClient } from '../client/index.js';
import { followBatch } from './follow.js';
import { openSink } from './output.js';

/** `inferq results <batchId> [-o file]`: streams a batch's results (again), in input order. */
export async function runResults(
  client: InferqClient,
  batchId: string,
  options: { output?: string },
): Promise<void> {
  const batch = await client.getBatch(batchId);
  const sink = await openSink(options.output);
  const result = await followBatch(client, batch.id, batch.total, sink);
  process.stderr.write(
    `batch ${batch.id}: ${result.written} results (${result.failed} failed)` +
      (options.output ? ` written to ${options.output}` : '') +
      '\n',
  );
}
