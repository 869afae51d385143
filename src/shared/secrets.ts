import { createHash, timingSafeEqual } from 'node:crypto';

/** SHA-256 of a secret: equal-length digests make the comparison constant-time. */
export function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

/** Whether `given` equals one of the secrets whose digests are `expected`, in constant time. */
export function secretMatches(given: string, expected: readonly Buffer[]): boolean {
  const digest = digestOf(given);
  let match = false;
  // Every candidate is compared, so timing tells nothing about which key (if any) matched.
  for (const candidate of expected) match = timingSafeEqual(digest, candidate) || match;
  return match;
}

/**
 * The secret of an Authorization header: a Bearer token, or the password of Basic auth (any
 * user name, so that a browser's own login prompt works).
 */
export function credentialOf(authorization: string | undefined): string | undefined {
  const value = authorization?.trim() ?? '';
  const bearer = /^Bearer\s+(.+)$/i.exec(value);
  if (bearer?.[1]) return bearer[1].trim();
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value);
  if (!basic?.[1]) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}
