import type { ApiError } from '../../shared/errors.js';

/** Whether `path` is under /v2, where errors take the Open Inference Protocol form. */
export function isV2Path(path: string): boolean {
  return path === '/v2' || path.startsWith('/v2/');
}

/** The HTTP status of an error on /v2: the protocol knows no 415 or 422, both are a bad request. */
export function v2Status(err: ApiError): number {
  return err.status === 415 || err.status === 422 ? 400 : err.status;
}

/** The Open Inference Protocol error body: `{"error": "<message>"}`. */
export function v2ErrorBody(err: ApiError): { error: string } {
  return { error: err.message };
}
