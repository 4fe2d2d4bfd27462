// The page's only door to the server: same-origin fetches under /api, JSON in
// and out, the CSRF token on every POST, and errors as the server words them.
import type { ApiError } from '../../src/web/types.js';

/** A refused or failed request, with the server's own message (ApiError.error). */
export class ApiFailure extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onSignedOut: () => void = () => {};

/** The token from /api/session, sent back as `x-csrf-token` on every POST. */
export function setCsrf(token: string | null): void {
  csrfToken = token;
}

/** Called when the server answers 401 (session ended, user removed): the page goes back to sign-in. */
export function onUnauthorized(cb: () => void): void {
  onSignedOut = cb;
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method === 'POST') {
    headers['content-type'] = 'application/json';
    if (csrfToken) headers['x-csrf-token'] = csrfToken;
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined });
  } catch {
    throw new ApiFailure(0, 'the daemon does not answer (is `carte daemon` running?)');
  }
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const message = (data as ApiError | null)?.error ?? `${method} ${path} failed: HTTP ${res.status}`;
    // A failed sign-in is a 401 too, but it is the form's to show, not a sign-out.
    if (res.status === 401 && path !== '/api/login') onSignedOut();
    throw new ApiFailure(res.status, message);
  }
  return data as T;
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body);

/** Query string from defined values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  return q.toString();
}
