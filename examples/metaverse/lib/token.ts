// Signed session tokens: base64url(JSON payload) "." base64url(HMAC-SHA256).
// Login issues them; Asset, Map and Game verify them with the shared secret,
// without a round trip to Login.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface TokenPayload {
  /** the user name */
  sub: string;
  /** expiry, seconds since the epoch */
  exp: number;
  /** what the token is for: "session" (Login) or "udp" (Game's position ticket) */
  use: string;
  /** extra claims (Game's ticket carries the room) */
  [claim: string]: unknown;
}

export class TokenError extends Error {
  constructor(readonly reason: 'malformed' | 'signature' | 'expired' | 'use') {
    super({ malformed: 'token is malformed', signature: 'token signature is invalid', expired: 'token has expired', use: 'token is not valid here' }[reason]);
  }
}

const mac = (secret: string, body: string) => createHmac('sha256', secret).update(body).digest();

export function signToken(payload: TokenPayload, secret: string): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${mac(secret, body).toString('base64url')}`;
}

export function verifyToken(token: string, secret: string, use: string, nowSeconds = Date.now() / 1000): TokenPayload {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) throw new TokenError('malformed');
  const body = token.slice(0, dot);
  const sig = Buffer.from(token.slice(dot + 1), 'base64url');
  const want = mac(secret, body);
  if (sig.length !== want.length || !timingSafeEqual(sig, want)) throw new TokenError('signature');
  let payload: TokenPayload;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenPayload;
  } catch {
    throw new TokenError('malformed');
  }
  if (typeof payload.sub !== 'string' || typeof payload.exp !== 'number') throw new TokenError('malformed');
  if (payload.use !== use) throw new TokenError('use');
  if (payload.exp <= nowSeconds) throw new TokenError('expired');
  return payload;
}
