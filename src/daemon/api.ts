// The daemon's local API: HTTP on a unix socket in CARTE_HOME, mode 0600
// (only root, or the owner of CARTE_HOME, can talk to it). Desired state is
// written through the store by whoever changes it; the API is for asking the
// daemon to act now and for what only the daemon knows.
import fs from 'node:fs';
import http from 'node:http';
import { CarteError } from '../errors.js';
import type { Logger } from '../log.js';
import { VERSION } from '../version.js';

/** The body and the query string's parameters of a request. */
export type Handler = (body: unknown, query: URLSearchParams) => Promise<unknown>;

/** An answer that is not JSON (e.g. the Prometheus text format). */
export class RawReply {
  constructor(readonly contentType: string, readonly body: string) {}
}

export class ApiServer {
  private server: http.Server | null = null;
  private readonly routes = new Map<string, Handler>();

  constructor(private readonly socket: string, private readonly log: Logger) {
    this.route('GET', '/v1/health', async () => ({ ok: true, pid: process.pid, version: VERSION }));
  }

  route(method: 'GET' | 'POST', path: string, handler: Handler): void {
    this.routes.set(`${method} ${path}`, handler);
  }

  async listen(): Promise<void> {
    // A socket file left by a daemon that died: nobody listens on it (we hold the converge lock).
    fs.rmSync(this.socket, { force: true });
    this.server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const url = req.url ?? '/';
        const q = url.indexOf('?');
        const path = q < 0 ? url : url.slice(0, q);
        const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
        const handler = this.routes.get(`${req.method} ${path}`);
        const reply = (code: number, value: unknown) => {
          if (value instanceof RawReply) {
            res.writeHead(code, { 'content-type': value.contentType });
            res.end(value.body);
            return;
          }
          res.writeHead(code, { 'content-type': 'application/json' });
          res.end(JSON.stringify(value));
        };
        if (!handler) return reply(404, { error: `no route ${req.method} ${path}` });
        let parsed: unknown;
        try {
          parsed = body ? JSON.parse(body) : undefined;
        } catch {
          return reply(400, { error: 'body is not JSON' });
        }
        handler(parsed, query).then((v) => reply(200, v ?? {}), (e: Error) => {
          // A request the caller got wrong (a bad query parameter): 400 with what to fix.
          if (e instanceof CarteError && e.code === 'usage') return reply(400, { error: e.message });
          this.log.warn({ route: path, err: e.message }, 'api request failed');
          reply(500, { error: e.message });
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.socket, () => resolve());
    });
    fs.chmodSync(this.socket, 0o600);
  }

  async close(): Promise<void> {
    const server = this.server;
    // Idle keep-alive connections (a `carte events -f`) would hold close() open.
    await new Promise<void>((resolve) => (server ? (server.close(() => resolve()), server.closeAllConnections()) : resolve()));
    fs.rmSync(this.socket, { force: true });
  }
}
