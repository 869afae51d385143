import type { InferqClient } from '../client/index.js';
import { followBatch } from './follow.js';
import { useSmallYoungGeneration } from './memory.js';
import { isParquetPath, openResultSink } from './output.js';

/** `inferq results <batchId> [-o file]`: streams a batch's results (again), in input order. */
export async function runResults(
  client: InferqClient,
  batchId: string,
  options: { output?: string },
): Promise<void> {
  useSmallYoungGeneration();
  const batch = await client.getBatch(batchId);
  // Parquet columns follow the model's task and labels; JSON Lines need nothing of it.
  const model = isParquetPath(options.output)
    ? await client.getModel(batch.model, batch.version)
    : { task: 'raw' as const };
  const sink = await openResultSink(options.output, model);
  const result = await followBatch(client, batch.id, batch.total, sink);
  process.stderr.write(
    `batch ${batch.id}: ${result.written} results (${result.failed} failed)` +
      (options.output ? ` written to ${options.output}` : '') +
      '\n',
  );
}
