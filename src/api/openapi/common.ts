import { z } from 'zod';
import type { oas31, ZodOpenApiResponseObject, ZodOpenApiResponsesObject } from 'zod-openapi';
import { ERROR_CATALOGUE, type ErrorCode } from '../../shared/errors.js';
import { ModelNameSchema, VersionSchema } from '../../shared/schemas.js';
import { ErrorBodySchema, V2ErrorSchema } from './schemas.js';

/** A JSON content object. */
export const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

/** Errors every /v1 route may answer: missing key, rate limit, outage, bug. */
export const COMMON_V1: ErrorCode[] = [
  'unauthorized',
  'rate_limited',
  'unavailable',
  'internal_error',
];

/** Error responses for `codes`, grouped by status, each naming its codes (own API envelope). */
export function errors(...codes: ErrorCode[]): ZodOpenApiResponsesObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_CATALOGUE[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, ZodOpenApiResponseObject> = {};
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

/** /v2 error responses for the given statuses (`{"error": "..."}`). */
export function v2Errors(...statuses: number[]): ZodOpenApiResponsesObject {
  const out: Record<string, ZodOpenApiResponseObject> = {};
  for (const status of statuses) {
    out[String(status)] = { description: `Error (${status}).`, content: json(V2ErrorSchema) };
  }
  return out;
}

/** Retry-After header of 202, 429 and 503. */
export const RETRY_AFTER = z.object({
  'Retry-After': z.string().meta({ description: 'Seconds to wait before retrying.' }),
});

const WWW_AUTHENTICATE = z.object({
  'WWW-Authenticate': z.string().meta({ example: 'Bearer realm="inferq"' }),
});

/** Path parameters `{model}`. */
export const ModelPath = z.object({ model: ModelNameSchema });

/** Path parameters `{model}` and `{version}`. */
export const ModelVersionPath = z.object({ model: ModelNameSchema, version: VersionSchema });

/** Path parameter `{id}`. */
export const IdPath = z.object({ id: z.string().max(128) });

/** Security of /v1 and /v2 routes: an API key when API_KEYS is set, nothing otherwise. */
export const API_KEY_SECURITY: oas31.SecurityRequirementObject[] = [
  { bearerKey: [] },
  { headerKey: [] },
  {},
];

/** Security of /admin: ADMIN_TOKEN as Bearer, or as the Basic password. */
export const ADMIN_SECURITY: oas31.SecurityRequirementObject[] = [
  { adminBearer: [] },
  { adminBasic: [] },
];

/** The Prefer header of routes that wait or long-poll. */
export const waitHeaders = z.object({
  prefer: z.string().optional().meta({
    description: 'RFC 7240: `wait=N` (seconds, capped by MAX_WAIT_S) or `respond-async`.',
  }),
});

/** `?wait=N` of long-polling routes. */
export const waitQuery = z.object({
  wait: z.string().optional().meta({ description: 'Long-poll up to this many seconds.' }),
});
