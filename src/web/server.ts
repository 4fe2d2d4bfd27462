// The dashboard's HTTP server inside the daemon (fastify): the page's files,
// the JSON API of src/web/types.ts, and Prometheus' /metrics. Who is asking
// is settled in one hook for every request: a bearer token (scripts) or a
// session cookie (the page), then the CSRF token for a cookie's POSTs, then
// the role the route needs. Refusals and actions are audited.
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type InjectOptions, type LightMyRequestResponse } from 'fastify';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { AuditEntry } from '../audit/types.js';
import { roleAllows, type Principal } from '../auth/types.js';
import { SERVICE_NAME } from '../api/lookup.js';
import { CarteError } from '../errors.js';
import { hostAllowed, type HttpAddress } from './address.js';
import type { Caller, WebDeps } from './deps.js';
import { EventFeed } from './events.js';
import { actionOf, bearerToken, csrfOk, HttpError, isPublic, neededRole, statusOf } from './guard.js';
import { FailureLimiter, Gate } from './limiter.js';
import { actionRoutes } from './routes-actions.js';
import { authRoutes, LOGIN_CHECKS } from './routes-auth.js';
import { readRoutes } from './routes-read.js';
import { CLEAR_COOKIE, SESSION_COOKIE, Sessions } from './sessions.js';
import { StaticFiles } from './static.js';

export const NO_USERS = 'no user exists yet: create one with `carte user add NAME --role admin`';
/** Wrong passwords per user name before it is refused for the rest of the window. */
export const LOGIN_FAILURES = { limit: 5, windowMs: 5 * 60_000 };
/** Where esbuild puts the page (dist/web, beside dist/src). */
export const DEFAULT_STATIC_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

export type Recorder = (who: Pick<Principal, 'kind' | 'name'>, via: AuditEntry['via'], action: string, target: string, result: AuditEntry['result'], detail?: string) => Promise<void>;

export interface WebServerOptions {
  /** Session lifetime (tests shorten it). */
  sessionTtlMs?: number;
  /** Set the cookie's Secure flag (behind an HTTPS proxy). */
  secureCookies?: boolean;
}

export class WebServer {
  private readonly app: FastifyInstance;
  private readonly sessions: Sessions;
  private readonly feed: EventFeed;
  private sweeper: NodeJS.Timeout | null = null;
  /** Where it listens, once it does (the Host check needs the port). */
  private bound: HttpAddress | null = null;

  constructor(private readonly deps: WebDeps, opts: WebServerOptions = {}) {
    this.sessions = new Sessions(opts.sessionTtlMs);
    this.feed = new EventFeed(() => deps.store.readShared(), deps.log);
    // trustProxy stays off: req.ip is the peer's address, which no header can fake.
    this.app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
    this.build(opts.secureCookies === true);
  }

  private readonly record: Recorder = async (who, via, action, target, result, detail) => {
    try {
      await this.deps.audit.record({ at: new Date(this.deps.now()).toISOString(), who: { kind: who.kind, name: who.name }, via, action, target, result, ...(detail ? { detail } : {}) });
    } catch (e) {
      // An audit that cannot be written is logged; the answer stands (as for the CLI).
      this.deps.log.warn({ err: (e as Error).message, action, target }, 'could not write the audit entry');
    }
  };

  private build(secureCookies: boolean): void {
    const { app, deps } = this;
    app.decorateRequest('caller', null);
    void app.register(cookie);
    void app.register(helmet, {
      // Everything from this server only: no CDN, no inline script.
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'], fontSrc: ["'self'"],
          connectSrc: ["'self'"], objectSrc: ["'none'"], baseUri: ["'none'"], formAction: ["'self'"], frameAncestors: ["'none'"],
        },
      },
      // Served on plain HTTP (127.0.0.1 by default): no HSTS, no upgrade of requests to HTTPS.
      strictTransportSecurity: false,
    });
    void app.register(rateLimit, { global: false });

    app.addHook('onRequest', async (req, reply) => this.admit(req, reply));

    app.setErrorHandler((err, req, reply) => {
      const status = statusOf(err);
      if (status >= 500) deps.log.warn({ route: req.url, err: (err as Error).message }, 'dashboard request failed');
      if (err instanceof HttpError) for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
      const message = err instanceof CarteError && err.details.length ? `${err.message}: ${err.details.join('; ')}` : (err as Error).message;
      void reply.code(status).send({ error: message });
    });
    app.setNotFoundHandler((req, reply) => {
      if (req.url.startsWith('/api/')) return void reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
      void reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
    });

    const failures = new FailureLimiter(LOGIN_FAILURES.limit, LOGIN_FAILURES.windowMs);
    void app.register(async (api) => {
      authRoutes(api, deps, this.sessions, failures, new Gate(LOGIN_CHECKS.running, LOGIN_CHECKS.queued), this.record, secureCookies);
      readRoutes(api, deps, this.feed, (req) => this.stillHolds(req));
      actionRoutes(api, deps, this.record);
    });

    app.get('/metrics', async (_req, reply) => {
      if (!deps.prometheus) throw new HttpError(404, 'no metrics collector runs in this daemon');
      const { contentType, body } = await deps.prometheus();
      return reply.type(contentType).send(body);
    });

    const files = new StaticFiles(deps.staticDir);
    const page = async (req: FastifyRequest, reply: FastifyReply) => {
      const path = req.url.split('?')[0]!;
      // An unknown API route is a JSON 404, not the page.
      if (path === '/api' || path.startsWith('/api/')) return reply.code(404).send({ error: `no route ${req.method} ${path}` });
      // Paths of the page's own views (no dot) get index.html; the page routes itself.
      const f = files.get(path) ?? (path.includes('.') ? null : files.get('/'));
      if (!f) {
        if (!files.built()) return reply.code(404).type('text/plain; charset=utf-8').send('the dashboard page is not built: run `make build`\n');
        return reply.code(404).type('text/plain; charset=utf-8').send('not found\n');
      }
      void reply.header('etag', f.etag).header('cache-control', f.cacheControl);
      if (req.headers['if-none-match'] === f.etag) return reply.code(304).send();
      return reply.type(f.type).send(f.body);
    };
    app.get('/', page);
    app.get('/*', page);
  }

  /** Settles who is asking and whether they may; throws 401/403 (audited for actions). */
  private async admit(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const path = req.url.split('?')[0]!;
    // DNS rebinding: on a loopback listener, only requests naming a loopback host (page and API alike).
    if (this.bound && !hostAllowed(req.headers.host, this.bound)) {
      throw new HttpError(421, `this dashboard answers only requests for 127.0.0.1 or localhost (it listens on a loopback address): open http://127.0.0.1:${this.bound.port}/`);
    }
    const guarded = path.startsWith('/api/') || path === '/metrics';
    if (!guarded) return;
    const { deps } = this;
    let ended = false;
    const token = bearerToken(req.headers.authorization);
    if (token !== null) {
      const principal = await deps.auth.verifyToken(token);
      if (!principal) throw new HttpError(401, 'the bearer token is unknown, removed or expired: make one with `carte token create --name NAME --role ROLE`');
      req.caller = { principal, via: 'api', session: null };
    } else {
      const s = this.sessions.find(req.cookies[SESSION_COOKIE], deps.now());
      if (s) {
        // Removed, or a new password or role since sign-in: the session ends now.
        if ((await deps.auth.userStamp(s.principal.name)) === s.stamp) req.caller = { principal: s.principal, via: 'dashboard', session: s };
        else {
          this.sessions.drop(s.id);
          ended = true;
        }
      }
      if (ended || (!s && req.cookies[SESSION_COOKIE])) void reply.clearCookie(SESSION_COOKIE, CLEAR_COOKIE);
    }
    // Signing out changes state: a cookie's sign-out needs the CSRF header too (no other site may sign you out).
    if (req.method === 'POST' && path === '/api/logout' && req.caller?.session && !csrfOk(req.caller.session.csrf, req.headers['x-csrf-token'])) {
      throw new HttpError(403, 'the x-csrf-token header is missing or wrong: reload the page (scripts: use a bearer token)');
    }
    if (isPublic(req.method, path)) return;
    const caller = req.caller;
    if (!caller) {
      if (!(await deps.auth.hasUsers())) throw new HttpError(401, NO_USERS);
      throw new HttpError(401, ended ? 'your session ended (the user was removed, or its password or role changed): sign in again' : 'not signed in: sign in, or send `Authorization: Bearer <token>`');
    }
    const action = req.method === 'POST' ? actionOf(path) : null;
    // A name no manifest could give ("__proto__", a line break) is no service: 404 before
    // anything else, and the typed text never reaches the audit.
    if (action?.service !== undefined && !SERVICE_NAME.test(action.service)) throw new HttpError(404, `service "${action.service}" not found`);
    if (req.method === 'POST' && caller.via === 'dashboard' && !csrfOk(caller.session!.csrf, req.headers['x-csrf-token'])) {
      if (action) await this.refuse(caller, action, 'no valid x-csrf-token header');
      throw new HttpError(403, 'the x-csrf-token header is missing or wrong: reload the page (scripts: use a bearer token)');
    }
    const need = neededRole(req.method, path);
    if (!roleAllows(caller.principal.role, need)) {
      if (action) await this.refuse(caller, action, `needs the ${need} role`);
      throw new HttpError(403, `${caller.principal.name} has the ${caller.principal.role} role: this needs ${need}`);
    }
  }

  /**
   * Whether a request's principal still holds (for long answers: the event
   * stream): its session not ended, expired or its user changed; its token
   * not removed or expired.
   */
  private async stillHolds(req: FastifyRequest): Promise<boolean> {
    const caller = req.caller;
    if (!caller) return false;
    if (caller.session) {
      const s = this.sessions.find(caller.session.id, this.deps.now());
      return s !== null && (await this.deps.auth.userStamp(s.principal.name)) === s.stamp;
    }
    const token = bearerToken(req.headers.authorization);
    return token !== null && (await this.deps.auth.verifyToken(token)) !== null;
  }

  private refuse(caller: Caller, what: { action: string; target: string }, why: string): Promise<void> {
    return this.record(caller.principal, caller.via, what.action, what.target, 'refused', `${caller.principal.role}: ${why}`);
  }

  /** Listens; a taken port is a clear error naming the flag. Returns the address bound (port 0 picks one). */
  async listen(address: HttpAddress, flag = '--http'): Promise<HttpAddress> {
    try {
      await this.app.listen({ host: address.host, port: address.port });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const where = `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`;
      if (code === 'EADDRINUSE') throw new CarteError('conflict', `the dashboard cannot listen on ${where}: the port is in use; choose another with ${flag} ADDR:PORT, or ${flag} off`);
      if (code === 'EADDRNOTAVAIL') throw new CarteError('conflict', `the dashboard cannot listen on ${where}: no interface of this machine has that address; choose another with ${flag} ADDR:PORT`);
      if (code === 'EACCES') throw new CarteError('conflict', `the dashboard cannot listen on ${where}: permission denied; choose another port with ${flag} ADDR:PORT`);
      throw e;
    }
    this.sweeper = setInterval(() => this.sessions.sweep(this.deps.now()), 10 * 60_000);
    this.sweeper.unref();
    const a = this.app.server.address();
    this.bound = a && typeof a === 'object' ? { host: a.address, port: a.port } : address;
    return this.bound;
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.feed.close();
    // Event streams are held open by the page: close them rather than wait.
    this.app.server.closeAllConnections?.();
    await this.app.close();
  }

  /** For tests: fastify's inject, no socket. */
  inject(opts: InjectOptions): Promise<LightMyRequestResponse> {
    return this.app.inject(opts);
  }
}
