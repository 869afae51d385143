import { z } from 'zod';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors.js';

// Response schemas are strict objects: the document then says `additionalProperties: false`,
// so a field the service sends but the contract lacks fails the test that validates real answers.

/** The pattern of public job and batch ids (a UUID-shaped string); other ids answer 404. */
export const PUBLIC_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A public job id. */
export const JobIdSchema = z.string().regex(PUBLIC_ID_RE, 'must be a job id').meta({
  description: 'A job id as returned by the service.',
  example: '7fda06b2-91c3-4b0e-8d2a-0c7e5b1f9e44',
});

/** A batch id. */
export const BatchIdSchema = z
  .string()
  .regex(PUBLIC_ID_RE, 'must be a batch id')
  .meta({ description: 'A batch id as returned by POST /v1/batches.' });

/** The `?wait=N` of status reads: seconds, a plain decimal number (anything else is 422). */
export const WAIT_RE = /^\d+(\.\d+)?$/;

/** `?wait=N` of long-polling routes. */
export const WaitQuerySchema = z.object({
  wait: z
    .string()
    .regex(WAIT_RE, 'must be a number of seconds')
    .optional()
    .meta({ description: 'Long-poll up to this many seconds (capped by MAX_WAIT_S).' }),
});

/** The `Prefer` header of routes that wait or long-poll. */
export const PreferHeaderSchema = z.object({
  prefer: z.string().optional().meta({
    description: 'RFC 7240: `wait=N` (seconds, capped by MAX_WAIT_S) or `respond-async`.',
  }),
});

const codes = Object.keys(ERROR_CATALOGUE) as [ErrorCode, ...ErrorCode[]];

/** One detail of a validation error: where and what. */
export const ErrorDetailSchema = z
  .strictObject({
    path: z.string().optional().meta({ description: 'Where: "instances[2]", "features".' }),
    line: z.number().int().optional().meta({ description: 'NDJSON line, 1-based.' }),
    message: z.string(),
  })
  .meta({ id: 'ErrorDetail' });
export type ErrorDetail = z.infer<typeof ErrorDetailSchema>;

/** The error envelope of the own API. */
export const ErrorBodySchema = z
  .strictObject({
    error: z.strictObject({
      code: z.enum(codes),
      message: z.string().meta({ description: 'A sentence a user can act on.' }),
      details: z.array(ErrorDetailSchema).optional(),
    }),
  })
  .meta({ id: 'Error' });
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** The error body of every /v2 route (Open Inference Protocol). */
export const V2ErrorSchema = z.strictObject({ error: z.string() }).meta({ id: 'V2Error' });

/** A failure stored with a job, batch row or live answer: public code and message. */
export const JobFailureSchema = z
  .strictObject({ code: z.string(), message: z.string() })
  .meta({ id: 'JobFailure' });
export type JobFailure = z.infer<typeof JobFailureSchema>;

/** What a model's outputs mean. */
export const TaskSchema = z.enum(['classification', 'regression', 'raw']).meta({ id: 'Task' });
export type Task = z.infer<typeof TaskSchema>;

/** Open Inference Protocol tensor datatypes. */
export const DatatypeSchema = z
  .enum([
    'BOOL',
    'UINT8',
    'UINT16',
    'UINT32',
    'UINT64',
    'INT8',
    'INT16',
    'INT32',
    'INT64',
    'FP16',
    'FP32',
    'FP64',
    'BYTES',
  ])
  .meta({ id: 'Datatype' });
export type Datatype = z.infer<typeof DatatypeSchema>;

/** A named tensor of a model: datatype and shape, -1 for a free dimension. */
export const TensorSpecSchema = z
  .strictObject({
    name: z.string(),
    datatype: DatatypeSchema,
    shape: z.array(z.number().int()).meta({ description: '-1 marks a free dimension.' }),
  })
  .meta({ id: 'TensorSpec' });
export type TensorSpec = z.infer<typeof TensorSpecSchema>;

/** An SSE event as a client reads it: its name and its `data` parsed as JSON. */
export function serverEvent<const N extends string, T extends z.ZodType>(event: N, data: T) {
  return z.strictObject({ event: z.literal(event), data, id: z.string().optional() });
}
