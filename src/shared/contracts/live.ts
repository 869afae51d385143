import { z } from 'zod';
import { JobFailureSchema } from './common.js';
import { InstanceResultSchema, RESULT_SHAPES } from './results.js';

/** A client's tag for one WebSocket request, echoed in its answer. */
export const RefSchema = z.union([z.string().min(1).max(200), z.number()]);
export type Ref = z.infer<typeof RefSchema>;

const [classification, regression, raw] = RESULT_SHAPES;
const envelope = {
  ref: RefSchema,
  status: z.literal('completed'),
  id: z.string(),
  model: z.string(),
  version: z.string(),
  cached: z.boolean(),
};

/** An answer on the live feed (GET /v1/ws), server to client. */
export const LiveAnswerSchema = z
  .union([
    z.strictObject({ ...envelope, ...classification }),
    z.strictObject({ ...envelope, ...regression }),
    z.strictObject({ ...envelope, ...raw }),
    z.strictObject({ ...envelope, predictions: z.array(InstanceResultSchema) }),
    z.strictObject({
      ref: RefSchema.optional(),
      status: z.literal('failed'),
      error: JobFailureSchema,
    }),
  ])
  .meta({ id: 'LiveAnswer' });
export type LiveAnswer = z.infer<typeof LiveAnswerSchema>;
