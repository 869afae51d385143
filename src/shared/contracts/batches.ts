import { z } from 'zod';
import { JobFailureSchema, serverEvent } from './common.js';
import { RESULT_SHAPES } from './results.js';

/** One item of a batch (a JSON `items` entry or an NDJSON line). */
export const BatchItemSchema = z
  .object({
    id: z.string().max(256).optional().meta({ description: 'Echoed in the result line.' }),
    features: z.array(z.number()),
  })
  .meta({ id: 'BatchItem' });
export type BatchItem = z.infer<typeof BatchItemSchema>;

/** 202 of POST /v1/batches. */
export const BatchAcceptedSchema = z
  .strictObject({
    id: z.string(),
    status: z.literal('queued'),
    total: z.number().int(),
    links: z.strictObject({ self: z.string(), results: z.string() }),
  })
  .meta({ id: 'BatchAccepted' });
export type BatchAccepted = z.infer<typeof BatchAcceptedSchema>;

/** Public status of a batch. */
export const BatchStatusSchema = z
  .enum(['queued', 'running', 'completed', 'cancelled'])
  .meta({ id: 'BatchStatus' });
export type BatchStatus = z.infer<typeof BatchStatusSchema>;

/** GET /v1/batches/{id}: progress of a batch; `completed + failed + pending = total`. */
export const BatchViewSchema = z
  .strictObject({
    id: z.string(),
    status: BatchStatusSchema,
    model: z.string(),
    version: z.string(),
    total: z.number().int(),
    completed: z.number().int(),
    failed: z.number().int().meta({ description: 'Rows that failed, cancelled rows included.' }),
    pending: z.number().int().meta({ description: 'Rows queued or running.' }),
    cancelled: z
      .number()
      .int()
      .optional()
      .meta({ description: 'Rows cancelled before they ran (counted in `failed` too).' }),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso
      .datetime()
      .optional()
      .meta({ description: 'Set once every row has an outcome.' }),
  })
  .meta({ id: 'Batch' });
export type BatchView = z.infer<typeof BatchViewSchema>;

const line = {
  index: z.number().int().meta({ description: 'Position in the submission, from 0.' }),
  id: z.string().optional().meta({ description: "The item's own id, when it had one." }),
};
const [classification, regression, raw] = RESULT_SHAPES;
const completed = {
  ...line,
  status: z.literal('completed'),
  cached: z.literal(true).optional().meta({ description: 'Served from the result cache.' }),
};

/** One line of GET /v1/batches/{id}/results, in submission order. */
export const BatchResultLineSchema = z
  .union([
    z.strictObject({ ...completed, ...classification }),
    z.strictObject({ ...completed, ...regression }),
    z.strictObject({ ...completed, ...raw }),
    z.strictObject({ ...line, status: z.literal('failed'), error: JobFailureSchema }),
    z.strictObject({ ...line, status: z.literal('cancelled') }),
  ])
  .meta({ id: 'BatchResultLine' });
export type BatchResultLine = z.infer<typeof BatchResultLineSchema>;

/** An event of GET /v1/batches/{id}/events: `progress` with the view, then `done`. */
export const BatchEventSchema = z
  .union([serverEvent('progress', BatchViewSchema), serverEvent('done', BatchViewSchema)])
  .meta({ id: 'BatchEvent', description: 'One Server-Sent Event, its `data` parsed as JSON.' });
export type BatchEvent = z.infer<typeof BatchEventSchema>;
