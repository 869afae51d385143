import { z } from 'zod';
import type { RouteConfig } from '@hono/zod-openapi';
import { ERROR_CATALOGUE, type ErrorCode } from '../../shared/errors.js';
import {
  BatchIdSchema,
  ErrorBodySchema,
  JobIdSchema,
  V2ErrorSchema,
} from '../../shared/contracts/common.js';
import { ModelNameSchema, VersionSchema } from '../../shared/schemas.js';

/** One response of a route. */
export type ResponseConfig = RouteConfig['responses'][string];

/** A JSON content object. */
export const json = <T extends z.ZodType>(schema: T) => ({ 'application/json': { schema } });

/** Errors every /v1 route may answer: missing key, rate limit, outage or shutdown, bug. */
export const COMMON_V1: ErrorCode[] = [
  'unauthorized',
  'rate_limited',
  'unavailable',
  'internal_error',
];

/** Retry-After header of 202, 429 and 503. */
export const RETRY_AFTER = z.object({
  'Retry-After': z.string().meta({ description: 'Seconds to wait before retrying.' }),
});

const WWW_AUTHENTICATE = z.object({
  'WWW-Authenticate': z.string().meta({ example: 'Bearer realm="inferq"' }),
});

/** Error responses for `codes`, grouped by status, each naming its codes (own API envelope). */
export function errors(...codes: ErrorCode[]): Record<string, ResponseConfig> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERROR_CATALOGUE[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, ResponseConfig> = {};
  for (const [status, list] of byStatus) {
    out[String(status)] = {
      description: list.map((c) => `\`${c}\`: ${ERROR_CATALOGUE[c].message}`).join(' '),
      content: json(ErrorBodySchema),
      ...(status === 429 || status === 503 ? { headers: RETRY_AFTER } : {}),
      ...(status === 401 ? { headers: WWW_AUTHENTICATE } : {}),
    };
  }
  return out;
}

/** What every submission (predict, job, batch) can be refused with, before its own codes. */
export const SUBMIT_ERRORS: ErrorCode[] = [
  'invalid_json',
  'model_not_found',
  'version_not_found',
  'payload_too_large',
  'unsupported_media_type',
  'validation_error',
  'queue_full',
];

/** /v2 error responses for the given statuses (`{"error": "..."}`). */
export function v2Errors(...statuses: number[]): Record<string, ResponseConfig> {
  const out: Record<string, ResponseConfig> = {};
  for (const status of statuses)
    out[String(status)] = { description: `Error (${status}).`, content: json(V2ErrorSchema) };
  return out;
}

/** Path parameter `{model}`. */
export const ModelPath = z.object({ model: ModelNameSchema });

/** Path parameters `{model}` and `{version}`. */
export const ModelVersionPath = z.object({ model: ModelNameSchema, version: VersionSchema });

/** Path parameter `{id}` of a job. */
export const JobIdPath = z.object({ id: JobIdSchema });

/** Path parameter `{id}` of a batch. */
export const BatchIdPath = z.object({ id: BatchIdSchema });

/** `?version=` of routes that take the model in the path. */
export const VersionQuery = z.object({
  version: VersionSchema.optional().meta({ description: 'The version to use (else the default).' }),
});

/** The `X-Model-Version` header (the `?version=` query wins when both are sent). */
export const VersionHeader = z.object({
  'x-model-version': VersionSchema.optional().meta({ description: 'Same as `?version=`.' }),
});

/** Security of /v1 and /v2 routes: an API key when API_KEYS is set, nothing otherwise. */
export const API_KEY_SECURITY: NonNullable<RouteConfig['security']> = [
  { bearerKey: [] },
  { headerKey: [] },
  {},
];

/** Security of /admin: ADMIN_TOKEN as Bearer, or as the Basic password. */
export const ADMIN_SECURITY: NonNullable<RouteConfig['security']> = [
  { adminBearer: [] },
  { adminBasic: [] },
];
