import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ApiError,
  ERROR_CATALOGUE,
  errorBody,
  formatFailure,
  parseFailure,
  type ErrorCode,
} from '../../src/shared/errors.js';

/** The error table of the public contract (API.md "Errors (own API)"): code -> status. */
const CONTRACT: Record<string, number> = {
  invalid_json: 400,
  unauthorized: 401,
  model_not_found: 404,
  version_not_found: 404,
  job_not_found: 404,
  batch_not_found: 404,
  job_not_cancellable: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  validation_error: 422,
  idempotency_key_reused: 422,
  rate_limited: 429,
  queue_full: 429,
  unavailable: 503,
  internal_error: 500,
};

/**
 * Reads a markdown error table: rows like "| 404 | `model_not_found`, `version_not_found` | ... |".
 * Returns code -> status, or undefined when the text has no such table.
 */
function parseErrorTable(markdown: string): Map<string, number> | undefined {
  const table = new Map<string, number>();
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // cells[0] is the empty text before the leading pipe.
    const statusCell = cells[1];
    const codeCell = cells[2];
    if (!statusCell || !codeCell || !/^\d{3}$/.test(statusCell)) continue;
    for (const [, code] of codeCell.matchAll(/`([a-z_]+)`/g)) {
      if (code) table.set(code, Number(statusCell));
    }
  }
  return table.size > 0 ? table : undefined;
}

const catalogueStatus = (code: string): number | undefined =>
  (ERROR_CATALOGUE as Record<string, { status: number } | undefined>)[code]?.status;

describe('ERROR_CATALOGUE', () => {
  it.each(Object.entries(CONTRACT))('holds %s with the contract status %i', (code, status) => {
    expect(catalogueStatus(code)).toBe(status);
    expect(ERROR_CATALOGUE[code as ErrorCode].message.length).toBeGreaterThan(0);
  });

  it('uses snake_case codes, HTTP error statuses and sentences for messages', () => {
    for (const [code, { status, message }] of Object.entries(ERROR_CATALOGUE)) {
      expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
      expect(message).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('matches the error table of API.md when the contract file is beside the checkout', () => {
    // The contract lives in ../shared/API.md in the workspace; CONTRACT above is its copy.
    const path = '../shared/API.md';
    const parsed = existsSync(path) ? parseErrorTable(readFileSync(path, 'utf8')) : undefined;
    if (existsSync(path)) expect(parsed, 'API.md has an error table').toBeDefined();
    const table = parsed ?? new Map(Object.entries(CONTRACT));
    expect(Object.fromEntries(table)).toEqual(CONTRACT);
  });

  it("agrees both ways with docs/api.md's error table for every code of the contract", () => {
    const readme = existsSync('docs/api.md')
      ? parseErrorTable(readFileSync('docs/api.md', 'utf8'))
      : undefined;
    // Until docs/api.md has its table, the contract's own table is the documented one.
    const documented = readme ?? new Map(Object.entries(CONTRACT));
    for (const [code, status] of Object.entries(CONTRACT)) {
      expect(documented.get(code), `docs/api.md lists ${code} with status ${status}`).toBe(status);
    }
    for (const [code, status] of documented) {
      expect(
        catalogueStatus(code),
        `the catalogue holds docs/api.md's ${code} with status ${status}`,
      ).toBe(status);
    }
  });
});

describe('ApiError and errorBody', () => {
  it('takes its status and default message from the catalogue', () => {
    const err = new ApiError('version_not_found');
    expect(err.status).toBe(404);
    expect(err.message).toBe(ERROR_CATALOGUE.version_not_found.message);
    expect(errorBody(err)).toEqual({ error: { code: 'version_not_found', message: err.message } });
  });

  it('renders details only when there are some', () => {
    const withDetails = new ApiError('validation_error', 'features: expected 30 features, got 29', [
      { path: 'features', message: 'expected 30 features, got 29' },
    ]);
    expect(errorBody(withDetails).error.details).toEqual([
      { path: 'features', message: 'expected 30 features, got 29' },
    ]);
    expect(errorBody(new ApiError('validation_error', 'x', [])).error).not.toHaveProperty(
      'details',
    );
  });
});

describe('formatFailure and parseFailure', () => {
  it.each(Object.keys(ERROR_CATALOGUE) as ErrorCode[])(
    'round-trips %s with its message',
    (code) => {
      const message = `Something about ${code}: with a colon, and "quotes".`;
      expect(parseFailure(formatFailure(code, message))).toEqual({ code, message });
    },
  );

  it('keeps a multi-line message whole', () => {
    const message = 'first line\nsecond line';
    expect(parseFailure(formatFailure('inference_failed', message))).toEqual({
      code: 'inference_failed',
      message,
    });
  });

  it('reads a reason that is not "code: message" as inference_failed with the reason as message', () => {
    expect(parseFailure('job stalled more than allowable limit')).toEqual({
      code: 'inference_failed',
      message: 'job stalled more than allowable limit',
    });
  });

  it('reads a missing reason as inference_failed with the catalogue message', () => {
    expect(parseFailure(undefined)).toEqual({
      code: 'inference_failed',
      message: ERROR_CATALOGUE.inference_failed.message,
    });
    expect(parseFailure('')).toEqual({
      code: 'inference_failed',
      message: ERROR_CATALOGUE.inference_failed.message,
    });
  });
});
