// Who may do what on the dashboard's API, as pure decisions: which role a
// route needs, whether a POST carries the session's CSRF token, how a bearer
// token is read.
import { timingSafeEqual } from 'node:crypto';
import type { Role } from '../auth/types.js';

/** The role a request needs: admins read the audit, operators act (every POST but sign-in/out), viewers read. */
export function neededRole(method: string, path: string): Role {
  if (path === '/api/audit' || path.startsWith('/api/audit?')) return 'admin';
  if (method === 'POST') return 'operator';
  return 'viewer';
}

/** Routes that need no principal: sign-in, sign-out, and who-am-I (the page asks it first). */
export function isPublic(method: string, path: string): boolean {
  const p = path.split('?')[0]!;
  return (method === 'GET' && p === '/api/session') || (method === 'POST' && (p === '/api/login' || p === '/api/logout'));
}

/** The token of `Authorization: Bearer <token>`, or null. */
export function bearerToken(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

/** Whether the x-csrf-token header is the session's token (compared in constant time). */
export function csrfOk(expected: string, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || header.length === 0) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(header);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An answer other than 200, with the message the page shows. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** The HTTP status for an error from the stores and service operations. */
export function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  const code = (e as { code?: unknown }).code;
  const status = (e as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 600) return status; // fastify's own (bad JSON, body too large)
  switch (code) {
    case 'not-found': return 404;
    case 'conflict': return 409;
    case 'usage': case 'manifest-invalid': return 400;
    case 'store-locked': return 503;
    default: return 500;
  }
}

/** The audit's action and target for an action route (`/api/services/web/scale` → scale, service/web). */
export function actionOf(path: string): { action: string; target: string; service?: string } | null {
  const p = path.split('?')[0]!;
  if (p === '/api/sync') return { action: 'sync', target: 'sources' };
  const m = /^\/api\/services\/([^/]+)\/(start|stop|restart|scale|rollback)$/.exec(p);
  if (!m) return null;
  let name: string;
  try {
    name = decodeURIComponent(m[1]!);
  } catch {
    name = m[1]!;
  }
  return { action: m[2]!, target: `service/${name}`, service: name };
}
