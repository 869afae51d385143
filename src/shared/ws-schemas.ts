import { z } from 'zod';
import { RefSchema, type Ref } from './contracts/live.js';
import { FeaturesSchema, InstancesSchema, ModelNameSchema, VersionSchema } from './schemas.js';

export { RefSchema, type Ref };

/** One request on GET /v1/ws: a model, inputs, and the client's `ref`. */
export const LiveRequestSchema = z
  .object({
    ref: RefSchema,
    model: ModelNameSchema,
    version: VersionSchema.optional(),
    features: FeaturesSchema.optional(),
    instances: InstancesSchema.optional(),
  })
  .refine((b) => (b.features === undefined) !== (b.instances === undefined), {
    message: 'send exactly one of "features" (one instance) or "instances" (a list)',
  })
  .meta({ id: 'LiveRequest' });
export type LiveRequest = z.infer<typeof LiveRequestSchema>;

/** The `ref` of a message when one can be read, so that even a bad message's answer is matched. */
export function refOf(message: unknown): Ref | undefined {
  if (!message || typeof message !== 'object') return undefined;
  const parsed = RefSchema.safeParse((message as { ref?: unknown }).ref);
  return parsed.success ? parsed.data : undefined;
}
