import { z } from 'zod';

/** GET /health/live. */
export const LiveSchema = z.strictObject({ status: z.literal('ok') }).meta({ id: 'Live' });

/** GET /health/ready when ready. */
export const ReadySchema = z
  .strictObject({
    status: z.literal('ready'),
    redis: z.literal('ok'),
    models: z.number().int(),
    workers: z.number().int(),
    queueDepth: z.number().int(),
  })
  .meta({ id: 'Ready' });

/** GET /health/ready when not ready (503). */
export const UnavailableSchema = z
  .strictObject({ status: z.literal('unavailable'), reason: z.string() })
  .meta({ id: 'Unavailable' });

/** Body of GET /health/ready (200 or 503). */
export type HealthReady = z.infer<typeof ReadySchema> | z.infer<typeof UnavailableSchema>;

/** POST /admin/models/reload. */
export const ReloadResultSchema = z
  .strictObject({
    added: z.array(z.string()).meta({ description: '`name@version` keys that appeared.' }),
    removed: z.array(z.string()),
    notified: z.number().int().meta({ description: 'Processes that heard the reload request.' }),
    models: z.array(
      z.strictObject({ name: z.string(), versions: z.array(z.string()), default: z.string() }),
    ),
  })
  .meta({ id: 'ReloadResult' });
export type ReloadResult = z.infer<typeof ReloadResultSchema>;
