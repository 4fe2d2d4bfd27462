// Sign-in, sign-out and who-am-I. The password is checked by the AuthStore
// (scrypt, same time for an unknown name); failures are limited per user name
// here and per address by @fastify/rate-limit; every attempt is audited.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AUTH_NAME } from '../auth/names.js';
import { HttpError } from './guard.js';
import { addressKey, type FailureLimiter, type Gate } from './limiter.js';
import { CLEAR_COOKIE, SESSION_COOKIE, sessionCookieOptions, type Sessions } from './sessions.js';
import type { LoginRequest, SessionInfo } from './types.js';
import type { WebDeps } from './deps.js';
import type { Recorder } from './server.js';

/** Sign-ins tried per address per minute (any result). */
export const LOGIN_PER_ADDRESS = { max: 30, timeWindowMs: 60_000 };
/** Password checks (scrypt) running at once, and waiting; a sign-in beyond both is 429 at once. */
export const LOGIN_CHECKS = { running: 2, queued: 16 };
/** Who the audit names for a sign-in with a name that is no user name, or no user's: never the typed text (it may be a password). */
export const INVALID_NAME = '(invalid name)';
export const UNKNOWN_USER = '(unknown user)';

export function authRoutes(app: FastifyInstance, deps: WebDeps, sessions: Sessions, failures: FailureLimiter, checks: Gate, record: Recorder, secureCookies: boolean): void {
  app.get('/api/session', async (req): Promise<SessionInfo> => {
    const s = req.caller?.session ?? null;
    return {
      usersExist: await deps.auth.hasUsers(),
      user: req.caller ? { name: req.caller.principal.name, role: req.caller.principal.role } : null,
      csrf: s?.csrf ?? null,
    };
  });

  app.post('/api/login', {
    config: {
      rateLimit: {
        max: LOGIN_PER_ADDRESS.max,
        timeWindow: LOGIN_PER_ADDRESS.timeWindowMs,
        // Every loopback address is one: a local caller cannot pick a new 127.x per try.
        keyGenerator: (req: FastifyRequest) => addressKey(req.ip),
        errorResponseBuilder: (_req: FastifyRequest, ctx: { ttl: number }) => new HttpError(429, `too many sign-ins from this address: try again in ${Math.max(1, Math.ceil(ctx.ttl / 1000))} s`),
      },
    },
  }, async (req, reply: FastifyReply): Promise<SessionInfo> => {
    const body = req.body as Partial<LoginRequest> | undefined;
    if (typeof body?.name !== 'string' || typeof body.password !== 'string' || !body.name || body.name.length > 200 || body.password.length > 1024) {
      throw new HttpError(400, 'send { "name": "...", "password": "..." }');
    }
    const { name, password } = body;
    if (!AUTH_NAME.test(name)) {
      // Refused before any check; the audit does not keep what was typed.
      await record({ kind: 'user', name: INVALID_NAME }, 'dashboard', 'login', `user/${INVALID_NAME}`, 'failed', 'not a valid user name');
      throw new HttpError(400, 'that is not a valid user name: user names are 1 to 32 characters, lowercase letters, digits, ".", "_" or "-", starting with a letter');
    }
    const known = (await deps.auth.userStamp(name)) !== null;
    const shown = known ? name : UNKNOWN_USER;
    const who = { kind: 'user' as const, name: shown };
    const now = deps.now();
    const wait = failures.retryAfter(name, now);
    if (wait > 0) {
      await record(who, 'dashboard', 'login', `user/${shown}`, 'refused', 'too many wrong passwords');
      throw new HttpError(429, `too many wrong passwords for "${name}": try again in ${wait} s`, { 'retry-after': String(wait) });
    }
    const checked = checks.tryRun(async () => {
      const p = await deps.auth.verifyPassword(name, password);
      return { principal: p, stamp: p ? await deps.auth.userStamp(p.name) : null };
    });
    if (!checked) throw new HttpError(429, 'too many sign-ins at once: try again in a moment', { 'retry-after': '1' });
    const { principal, stamp } = await checked;
    if (!principal || stamp === null) {
      failures.fail(name, now);
      await record(who, 'dashboard', 'login', `user/${shown}`, 'failed', 'wrong user name or password');
      throw new HttpError(401, 'wrong user name or password');
    }
    failures.clear(name);
    const old = req.caller?.session;
    if (old) sessions.drop(old.id);
    const s = sessions.create(principal, stamp, now);
    reply.setCookie(SESSION_COOKIE, s.id, sessionCookieOptions(s.expiresAt, secureCookies));
    await record(principal, 'dashboard', 'login', `user/${name}`, 'ok');
    return { usersExist: true, user: { name: principal.name, role: principal.role }, csrf: s.csrf };
  });

  app.post('/api/logout', async (req, reply) => {
    const s = req.caller?.session;
    if (s) sessions.drop(s.id);
    reply.clearCookie(SESSION_COOKIE, CLEAR_COOKIE);
    return {};
  });
}
