import { z } from 'zod';
import { JobFailureSchema, serverEvent } from './common.js';
import { ResultBodySchema } from './results.js';

/** Public status of a job. */
export const JobStatusSchema = z
  .enum(['queued', 'active', 'completed', 'failed', 'cancelled'])
  .meta({ id: 'JobStatus' });
export type JobStatus = z.infer<typeof JobStatusSchema>;

/** GET /v1/jobs/{id}. */
export const JobViewSchema = z
  .strictObject({
    id: z.string(),
    status: JobStatusSchema,
    model: z.string(),
    version: z.string(),
    attempts: z.number().int(),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().optional(),
    result: ResultBodySchema.optional().meta({
      description: 'The predict body without the envelope.',
    }),
    error: JobFailureSchema.optional(),
  })
  .meta({ id: 'Job' });
export type JobView = z.infer<typeof JobViewSchema>;

/** An event of GET /v1/jobs/{id}/events: `status` events, then one `result` or `error`. */
export const JobEventSchema = z
  .union([
    serverEvent('status', JobViewSchema),
    serverEvent('result', JobViewSchema),
    serverEvent('error', JobFailureSchema),
  ])
  .meta({ id: 'JobEvent', description: 'One Server-Sent Event, its `data` parsed as JSON.' });
export type JobEvent = z.infer<typeof JobEventSchema>;
