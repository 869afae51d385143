import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { z } from 'zod';
import { JobEventSchema } from '../../shared/contracts/jobs.js';
import type { ApiDeps, AppEnv } from '../deps.js';
import { jobRefOf, ownerOf } from '../http/owner.js';
import { API_KEY_SECURITY, COMMON_V1, errors, JobIdPath } from '../openapi/common.js';
import { mount, routeApp, type RouteApp } from '../openapi/route.js';
import type { JobView } from './job-service.js';
import type { JobRef, Owner } from './public-ids.js';
import type { JobOutcome, Wait } from './results-hub.js';

const JobEventsRoute = createRoute({
  method: 'get',
  path: '/v1/jobs/{id}/events',
  tags: ['jobs'],
  summary: 'Server-Sent Events: `status` events, then one `result` or `error` event.',
  security: API_KEY_SECURITY,
  request: { params: JobIdPath },
  responses: {
    200: {
      description:
        'An event stream. The schema is that of one event, its `data` parsed as JSON ' +
        '(`status` and `result` carry the job, `error` a failure); `:` comments keep it alive.',
      content: { 'text/event-stream': { schema: JobEventSchema } },
    },
    ...errors('job_not_found', ...COMMON_V1),
  },
});

/** Interval of the SSE comment that keeps proxies from closing an idle stream, milliseconds. */
export const KEEP_ALIVE_MS = 15_000;

// setTimeout's ceiling: a feed follows a job for at most this long (or RESULT_TTL_S).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The last event of a feed: the completed job, or why there is none. */
type FinalEvent = Extract<z.infer<typeof JobEventSchema>, { event: 'result' | 'error' }>;

/** Writes one feed's events in order, whoever asks for them. */
function serialWriter(stream: SSEStreamingApi) {
  let chain = Promise.resolve();
  return {
    send({ event, data }: z.infer<typeof JobEventSchema>): Promise<void> {
      chain = chain.then(() => stream.writeSSE({ event, data: JSON.stringify(data) }));
      return chain;
    },
    comment(text: string): Promise<void> {
      chain = chain.then(async () => void (await stream.write(`: ${text}\n\n`)));
      return chain;
    },
  };
}

const failure = (code: string, message: string): FinalEvent => ({
  event: 'error',
  data: { code, message },
});

/** The final event for a job that has ended as `outcome` (undefined: the wait was given up). */
async function finalEvent(
  deps: ApiDeps,
  job: FeedJob,
  outcome: JobOutcome | undefined,
): Promise<FinalEvent> {
  const jobId = job.id;
  if (outcome?.state === 'completed') {
    const view = await deps.jobs.view(job.owner, job.ref, job.id).catch(() => undefined);
    if (view?.status === 'completed') return { event: 'result', data: view };
    // A request's part of a gathered job can fail on its own while the job completes.
    if (view?.status === 'failed' && view.error) return { event: 'error', data: view.error };
    return failure('job_not_found', `Job "${jobId}" has expired.`);
  }
  if (outcome?.state === 'failed') return { event: 'error', data: outcome.failure };
  if (outcome?.state === 'cancelled')
    return failure('job_not_found', `Job "${jobId}" was cancelled.`);
  return failure('unavailable', 'The server stopped following the job; reconnect to go on.');
}

/** The final event a view already shows, when the job has ended. */
function endedEvent(view: JobView): FinalEvent | undefined {
  if (view.status === 'completed') return { event: 'result', data: view };
  if (view.status === 'failed')
    return { event: 'error', data: view.error ?? { code: 'inference_failed', message: '' } };
  if (view.status === 'cancelled')
    return failure('job_not_found', `Job "${view.id}" was cancelled.`);
  return undefined;
}

/** The job a feed follows: its public id, what it names and whose it is. */
interface FeedJob {
  id: string;
  ref: JobRef;
  owner: Owner;
}

/** What a feed listens to, registered before the job was first read. */
interface FeedSources {
  wait: Wait;
  /** Replaces what an activation does; returns whether one happened already. */
  onActive(cb: () => void): boolean;
  stop(): void;
}

function listen(deps: ApiDeps, jobId: string): FeedSources {
  const wait = deps.hub.wait(jobId, Math.min(deps.config.RESULT_TTL_S * 1000, MAX_TIMER_MS), {
    poll: true,
    watchActive: true,
  });
  let seen = false;
  let handler: () => void = () => {
    seen = true;
  };
  const stopActive = deps.hub.onActive(jobId, () => handler());
  return {
    wait,
    onActive(cb) {
      handler = cb;
      return seen;
    },
    stop() {
      wait.cancel();
      stopActive();
    },
  };
}

async function follow(
  deps: ApiDeps,
  stream: SSEStreamingApi,
  job: FeedJob,
  first: JobView,
  sources: FeedSources,
): Promise<void> {
  const out = serialWriter(stream);
  await out.send({ event: 'status', data: first });
  const ended = endedEvent(first);
  if (ended) return out.send(ended);
  let queued = first.status === 'queued';
  const markActive = () => {
    if (!queued) return;
    queued = false;
    void out.send({
      event: 'status',
      data: { ...first, status: 'active', attempts: Math.max(first.attempts, 1) },
    });
  };
  if (sources.onActive(markActive)) markActive();
  const keepAlive = setInterval(() => {
    void out.comment('keep-alive');
    // Queue events are best-effort: look at the job itself now and then.
    deps.hub.peek(job.ref.jobId).then(
      (o) => o && deps.hub.settle(job.ref.jobId, o),
      () => undefined,
    );
  }, KEEP_ALIVE_MS);
  const aborted = new Promise<'aborted'>((resolve) => stream.onAbort(() => resolve('aborted')));
  try {
    const outcome = await Promise.race([sources.wait.promise, aborted]);
    if (outcome === 'aborted') return;
    // A job that ran between two reads of it was active, though no read saw it so.
    if (outcome?.state === 'completed' || outcome?.state === 'failed') markActive();
    const last = await finalEvent(deps, job, outcome);
    await out.send(last);
  } finally {
    clearInterval(keepAlive);
  }
}

/** GET /v1/jobs/{id}/events: status events, then one result or error event, then the end. */
export function jobEventRoutes(deps: ApiDeps): RouteApp {
  const app = routeApp();

  const exists = (c: Context<AppEnv>) => jobRefOf(deps, ownerOf(c), c.req.param('id') ?? '');
  mount(
    app,
    JobEventsRoute,
    async (c) => {
      const id = c.req.param('id') ?? '';
      const owner = ownerOf(c);
      const job: FeedJob = { id, owner, ref: await jobRefOf(deps, owner, id) };
      // Listen before the first read, so that no end or activation slips between the two.
      const sources = listen(deps, job.ref.jobId);
      let first: JobView;
      try {
        first = await deps.jobs.view(owner, job.ref, id);
        // The view reads the job's hash before its state: one that ended in between lacks its end.
        if (first.status === 'failed' && !first.finishedAt)
          first = await deps.jobs.view(owner, job.ref, id);
      } catch (err) {
        sources.stop();
        throw err;
      }
      const res = streamSSE(c, async (stream) => {
        try {
          await follow(deps, stream, job, first, sources);
        } finally {
          sources.stop();
        }
      });
      // A feed ends when its job does; its connection closes with it rather than idling on, which
      // would hold a shutting-down server open until the keep-alive timeout.
      res.headers.set('Connection', 'close');
      return res;
    },
    { exists },
  );

  return app;
}
