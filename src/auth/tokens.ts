// API tokens: "carte_" and 32 random bytes in base64url (43 characters).
// Only the SHA-256 of a token is stored: a token has 256 bits of entropy, so
// a fast hash is enough (no slow hash needed, unlike passwords), and a copy
// of users.json does not hold usable tokens. The prefix lets secret scanners
// and people recognise one.
import { createHash, randomBytes } from 'node:crypto';

export const TOKEN_PREFIX = 'carte_';
const TOKEN = /^carte_[A-Za-z0-9_-]{43}$/;

export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function isTokenShaped(token: string): boolean {
  return TOKEN.test(token);
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A short public id to name a token by (in lists, `carte token rm`, the audit log). */
export function newTokenId(): string {
  return `t${randomBytes(4).toString('hex')}`;
}
