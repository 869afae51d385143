import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ApiError } from '../../shared/errors.js';

/** Refuses bodies over `maxBytes` with 413 while reading, never buffering more than that. */
export function limitBody(maxBytes: number): MiddlewareHandler {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError('payload_too_large', `The request body is larger than ${maxBytes} bytes.`);
    },
  });
}

function isJsonType(contentType: string | undefined): boolean {
  if (!contentType) return true;
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  // curl -d sends form-urlencoded by default; TF Serving reads such bodies as JSON, so do we.
  return (
    type === 'application/json' ||
    type.endsWith('+json') ||
    type === 'application/x-www-form-urlencoded'
  );
}

/** Reads the body as JSON: 415 for another media type, 400 invalid_json when it does not parse. */
export async function readJson(c: Context): Promise<unknown> {
  if (!isJsonType(c.req.header('content-type'))) {
    throw new ApiError('unsupported_media_type', 'Send the body as application/json.');
  }
  const text = await c.req.text();
  if (text.trim() === '')
    throw new ApiError('invalid_json', 'The request body is empty; send a JSON object.');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ApiError(
      'invalid_json',
      `The request body is not valid JSON: ${(err as Error).message}.`,
    );
  }
}
