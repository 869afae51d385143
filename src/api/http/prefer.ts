import { ApiError } from '../../shared/errors.js';

/** Preferences of an RFC 7240 `Prefer` header that inferq honours. */
export interface Preferences {
  /** `wait=N`, seconds. */
  wait?: number;
  /** `respond-async`. */
  respondAsync: boolean;
}

/** Parses one or more comma-separated `Prefer` header values; unknown preferences are ignored. */
export function parsePrefer(header: string | undefined | null): Preferences {
  const prefs: Preferences = { respondAsync: false };
  if (!header) return prefs;
  for (const part of header.split(',')) {
    const [rawName, ...rest] = part.split(';')[0]?.split('=') ?? [];
    const name = rawName?.trim().toLowerCase();
    const value = rest.join('=').trim().replace(/^"|"$/g, '');
    if (name === 'respond-async') prefs.respondAsync = true;
    if (name === 'wait' && /^\d+(\.\d+)?$/.test(value)) prefs.wait = Number(value);
  }
  return prefs;
}

/** Seconds to wait for a result: the asked wait capped by `maxS`, else `defaultS`. */
export function waitSeconds(asked: number | undefined, defaultS: number, maxS: number): number {
  return Math.min(asked ?? defaultS, maxS);
}

/**
 * Seconds a status read may long-poll: `?wait=N` (422 unless a number) or `Prefer: wait=N`,
 * capped by `maxS`; 0 when neither asks.
 */
export function askedWaitS(
  query: string | undefined,
  prefer: string | undefined,
  maxS: number,
): number {
  if (query !== undefined && !/^\d+(\.\d+)?$/.test(query)) {
    throw new ApiError('validation_error', 'wait must be a number of seconds.', [
      { path: 'wait', message: 'must be a number of seconds' },
    ]);
  }
  const asked = query !== undefined ? Number(query) : parsePrefer(prefer).wait;
  return waitSeconds(asked ?? 0, 0, maxS);
}
