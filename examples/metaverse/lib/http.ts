// The HTTP side shared by Login, Asset and Map: a route table, JSON bodies
// with a size limit, errors as JSON with a status and a code, bearer tokens,
// an access log, and a graceful stop that finishes in-flight requests.
import http from 'node:http';
import type { Log } from './log.js';
import { RedisUnavailable } from './redis.js';
import { TokenError, verifyToken, type TokenPayload } from './token.js';

/** A failure the client caused or should know about: sent as {"error": {code, message}}. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export interface Ctx {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  log: Log;
}

export type Handler = (ctx: Ctx) => Promise<void> | void;

export interface Route { method: string; path: string; handler: Handler }

interface Compiled { method: string; parts: string[]; handler: Handler }

/** Matches "/v1/rooms/:id" against a path; returns the parameters or null. */
export function matchPath(pattern: string[], path: string): Record<string, string> | null {
  const parts = path.split('/').filter(Boolean);
  if (parts.length !== pattern.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(parts[i]!);
      } catch {
        return null;
      }
    } else if (p !== parts[i]) return null;
  }
  return params;
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = status === 204 ? '' : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-content-type-options': 'nosniff', ...headers });
  res.end(text);
}

/** Reads a JSON object body of at most `limit` bytes. */
export async function readJson(req: http.IncomingMessage, limit = 64 * 1024): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) throw new HttpError(413, 'too_large', `body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'too_large', `body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_json', 'body is not valid JSON (send an object with Content-Type: application/json)');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'bad_json', 'body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The session behind "Authorization: Bearer TOKEN", or 401. */
export function requireUser(req: http.IncomingMessage, secret: string): TokenPayload {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  if (!m) throw new HttpError(401, 'unauthorized', 'send "Authorization: Bearer TOKEN" with a token from Login', { 'www-authenticate': 'Bearer' });
  try {
    return verifyToken(m[1]!, secret, 'session');
  } catch (e) {
    if (e instanceof TokenError) throw new HttpError(401, 'unauthorized', e.message, { 'www-authenticate': 'Bearer' });
    throw e;
  }
}

/** A request handler over a route table: 404 for unknown paths, 405 (with Allow) for wrong methods. */
export function router(routes: Route[], log: Log): http.RequestListener {
  const compiled: Compiled[] = routes.map((r) => ({ method: r.method, parts: r.path.split('/').filter(Boolean), handler: r.handler }));
  return (req, res) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://x');
    res.on('finish', () => log.debug('request', { method: req.method, path: url.pathname, status: res.statusCode, ms: Math.round((performance.now() - started) * 10) / 10 }));
    const handle = async () => {
      const allowed: string[] = [];
      for (const r of compiled) {
        const params = matchPath(r.parts, url.pathname);
        if (!params) continue;
        if (r.method !== req.method) {
          allowed.push(r.method);
          continue;
        }
        return r.handler({ req, res, params, query: url.searchParams, log });
      }
      if (allowed.length) throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname} (use ${allowed.join(', ')})`, { allow: allowed.join(', ') });
      throw new HttpError(404, 'not_found', `no such endpoint: ${req.method} ${url.pathname}`);
    };
    handle().catch((e: Error) => {
      const err = e instanceof HttpError ? e
        : e instanceof RedisUnavailable ? new HttpError(503, 'unavailable', e.message, { 'retry-after': '1' })
          : null;
      if (!err) log.error('request failed', { method: req.method, path: url.pathname, error: e.message, stack: e.stack });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const { status, code, message, headers } = err ?? new HttpError(500, 'internal', 'internal error (see the server log)');
      // A body the handler did not read would stall keep-alive: close instead.
      if (!req.complete) res.setHeader('connection', 'close');
      sendJson(res, status, { error: { code, message } }, headers);
    });
  };
}

/**
 * Listens on `port`; on SIGTERM/SIGINT stops accepting, finishes in-flight
 * requests (keep-alive connections are closed as soon as they are idle),
 * runs `cleanup`, and exits; after `graceMs` it exits anyway.
 */
export function serve(handler: http.RequestListener, port: number, log: Log, cleanup: () => Promise<void>, graceMs = 10_000): http.Server {
  let stopping = false;
  const server = http.createServer((req, res) => {
    if (stopping) res.setHeader('connection', 'close');
    handler(req, res);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, () => log.info('listening', { port }));
  onStop(log, graceMs, async () => {
    stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    await closed;
    clearInterval(idle);
    await cleanup();
  });
  return server;
}

/** Runs `stop` once on SIGTERM or SIGINT, then exits 0 (or 1 after graceMs). */
export function onStop(log: Log, graceMs: number, stop: () => Promise<void>): void {
  let once = false;
  const handler = (signal: string) => {
    if (once) return;
    once = true;
    log.info('stopping: finishing in-flight work', { signal, graceMs });
    const timer = setTimeout(() => {
      log.warn('grace period over, exiting with work in flight');
      process.exit(1);
    }, graceMs);
    timer.unref();
    stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (e: Error) => {
        log.error('stop failed', { error: e.message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}

/** Exits with a clear message when configuration is wrong (no stack trace). */
export function startOrExit(log: Log, start: () => void): void {
  try {
    start();
  } catch (e) {
    log.error('cannot start', { error: (e as Error).message });
    process.exit(2);
  }
}
