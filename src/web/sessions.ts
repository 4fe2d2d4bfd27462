// Dashboard sign-ins: random ids held in the daemon's memory only (a daemon
// restart signs everyone out), a fixed lifetime, and the user's stamp at
// sign-in so a removed user or a changed password ends the session at once.
import { randomBytes } from 'node:crypto';
import type { Principal, Session } from '../auth/types.js';

export const SESSION_COOKIE = 'carte_session';
/** How long a sign-in lasts (not sliding: sign in again after it). */
export const SESSION_TTL_MS = 12 * 3600_000;
/** Sessions kept at most; the oldest go first (a flood of logins cannot grow the daemon without bound). */
export const SESSION_LIMIT = 10_000;

export interface WebSession extends Session {
  /** The user's stamp when they signed in (AuthStore.userStamp): a different one now ends the session. */
  stamp: string;
}

export class Sessions {
  // Insertion order is creation order: the first entries are the oldest.
  private readonly byId = new Map<string, WebSession>();

  constructor(private readonly ttlMs = SESSION_TTL_MS, private readonly limit = SESSION_LIMIT) {}

  create(principal: Principal, stamp: string, now: number): WebSession {
    const s: WebSession = { id: randomBytes(32).toString('base64url'), principal, csrf: randomBytes(32).toString('base64url'), expiresAt: now + this.ttlMs, stamp };
    this.byId.set(s.id, s);
    while (this.byId.size > this.limit) this.byId.delete(this.byId.keys().next().value!);
    return s;
  }

  /** The live session with this id, or null (an expired one is forgotten). */
  find(id: string | undefined, now: number): WebSession | null {
    if (!id) return null;
    const s = this.byId.get(id);
    if (!s) return null;
    if (now >= s.expiresAt) {
      this.byId.delete(id);
      return null;
    }
    return s;
  }

  drop(id: string): void {
    this.byId.delete(id);
  }

  /** Forgets expired sessions (called now and then, so abandoned ones do not pile up). */
  sweep(now: number): void {
    for (const [id, s] of this.byId) if (now >= s.expiresAt) this.byId.delete(id);
  }

  get size(): number {
    return this.byId.size;
  }
}

/** The session cookie's attributes: HttpOnly (no script reads it), SameSite=Strict (no other site sends it), the whole site. */
export function sessionCookieOptions(expiresAt: number, secure: boolean): { httpOnly: true; sameSite: 'strict'; path: '/'; expires: Date; secure: boolean } {
  return { httpOnly: true, sameSite: 'strict', path: '/', expires: new Date(expiresAt), secure };
}

/** Clearing the cookie with the attributes it was set with. */
export const CLEAR_COOKIE = { path: '/', httpOnly: true, sameSite: 'strict' } as const;
