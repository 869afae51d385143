import type { Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { BatchEvent } from '../../shared/contracts/batches.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import type { Owner } from '../jobs/public-ids.js';

// SSE comment line sent when nothing changed for this long, so proxies keep the stream open.
const KEEP_ALIVE_MS = 15_000;
// Fewest milliseconds between two progress events of one stream.
const PROGRESS_EVERY_MS = 100;

/** Writes one event of the contract's BatchEvent form. */
function send(s: SSEStreamingApi, { event, data }: BatchEvent): Promise<void> {
  return s.writeSSE({ event, data: JSON.stringify(data) });
}

/**
 * GET /v1/batches/{id}/events once the batch is known to exist: a `progress` event whenever
 * the view changes, a keep-alive comment when it does not, then `done` with the final view.
 */
export function progressEvents(
  c: Context<AppEnv>,
  deps: ApiDeps,
  owner: Owner,
  id: string,
): Response {
  const { batches, logger } = deps;
  return streamSSE(
    c,
    async (s) => {
      const watch = batches.watch(id);
      s.onAbort(() => watch.close());
      try {
        let last = '';
        let lastWrite = Date.now();
        while (!s.aborted && !batches.isClosed) {
          const view = await batches.view(owner, id);
          const text = JSON.stringify(view);
          if (text !== last) {
            await send(s, { event: 'progress', data: view });
            [last, lastWrite] = [text, Date.now()];
          } else if (Date.now() - lastWrite >= KEEP_ALIVE_MS) {
            await s.write(': keep-alive\n\n');
            lastWrite = Date.now();
          }
          if (view.finishedAt !== undefined) {
            await send(s, { event: 'done', data: view });
            return;
          }
          await s.sleep(PROGRESS_EVERY_MS);
          // Events are best-effort: look again every 2 s even without one.
          await watch.next(2000);
        }
      } finally {
        watch.close();
      }
    },
    (err) => {
      logger.warn({ err, batchId: id }, 'batch events stream failed');
      return Promise.resolve();
    },
  );
}
