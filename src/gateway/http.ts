// An HTTP listener shared by services published with `host`: the Host header
// picks the service (deployment by subdomain). Requests are proxied over
// keep-alive connections per instance; answers of the gateway itself:
//   404  no service is published for this host on this port;
//   503  the service has no ready instance (after waiting for one to start);
//   502  the instance failed the request (refused, reset, bad response).
// WebSocket and other upgrades are spliced through as raw TCP.
import http from 'node:http';
import net from 'node:net';
import type { Logger } from '../log.js';
import type { Target } from './listeners.js';
import type { Sockets } from './sockets.js';
import { connectTarget, spliceTracked } from './tcp.js';
import type { Lease, Upstreams } from './upstreams.js';

// Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business, never forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

function forwardHeaders(headers: http.IncomingHttpHeaders, extra: Record<string, string>): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  const listed = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && !listed.has(k) && v !== undefined) out[k] = v;
  return { ...out, ...extra };
}

/** The host a request is for, without port, lower case. */
export function requestHost(req: Pick<http.IncomingMessage, 'headers'>): string {
  return String(req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '').toLowerCase();
}

function reply(res: http.ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${JSON.stringify({ error: message })}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-carte-gateway': '1' });
  res.end(body);
}

export class HttpListener {
  /** Accepts connections (from the gateway's sockets, like every listener) and hands them to `server`. */
  private front: net.Server | null = null;
  private readonly server: http.Server;
  private readonly agents = new Map<string, http.Agent>();
  private readonly sockets = new Set<net.Socket>();

  constructor(public routes: Record<string, Target>, private readonly upstreams: Upstreams, private readonly opts: { holdMs: number }, private readonly log: Logger) {
    this.server = http.createServer({ keepAlive: true }, (req, res) => void this.handle(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void this.upgrade(req, socket, head));
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  async listen(sockets: Sockets, address: string, port: number): Promise<void> {
    this.front = await sockets.tcp(address, port, (s) => {
      this.server.emit('connection', s);
      s.resume();
    });
    this.front.on('error', (e) => this.log.warn({ err: e.message, address, port }, 'listener error'));
  }

  private agent(lease: Lease): http.Agent {
    const key = `${lease.instance} ${lease.ip}:${lease.port}`;
    let a = this.agents.get(key);
    if (!a) {
      a = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });
      this.agents.set(key, a);
    }
    return a;
  }

  /** Closes pooled connections to instances that are gone or draining. */
  prune(live: (instance: string) => boolean): void {
    for (const [key, a] of this.agents) {
      if (!live(key.split(' ')[0]!)) {
        a.destroy();
        this.agents.delete(key);
      }
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const host = requestHost(req);
    const target = this.routes[host];
    if (!target) {
      reply(res, 404, `no service is published for host "${host}" on this port`);
      return;
    }
    this.upstreams.countRequest(target.service);
    // Latency: until the answer is sent (or the exchange is cut); an answer ≥ 500 is an error of the service.
    const t0 = performance.now();
    res.once('close', () => {
      this.upstreams.traffic.latency(target.service, performance.now() - t0);
      if (res.statusCode >= 500) this.upstreams.traffic.error(target.service);
    });
    // A request without a body can be retried on another instance when one refuses it.
    const retryable = (req.headers['content-length'] ?? '0') === '0' && req.headers['transfer-encoding'] === undefined;
    const deadline = Date.now() + this.opts.holdMs;
    const tried = new Set<string>();
    for (;;) {
      const lease = await this.upstreams.acquire(target, deadline, tried);
      if (!lease) {
        reply(res, 503, `service "${target.service}" has no ready instance`);
        return;
      }
      const outcome = await this.forward(req, res, lease, retryable);
      if (outcome === 'done') return;
      this.upstreams.failed(lease);
      tried.add(lease.instance);
      if (!retryable || outcome === 'failed' || Date.now() >= deadline) {
        reply(res, 502, `service "${target.service}": instance ${lease.instance} failed the request`);
        return;
      }
      if (this.upstreams.allTried(target.service, tried)) {
        tried.clear();
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  /** 'done' (answered), 'refused' (never reached the instance: safe to retry) or 'failed'. */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, lease: Lease, bodiless: boolean): Promise<'done' | 'refused' | 'failed'> {
    return new Promise((resolve) => {
      const up = http.request({
        host: lease.ip, port: lease.port, method: req.method, path: req.url, agent: this.agent(lease),
        headers: forwardHeaders(req.headers, {
          'x-forwarded-for': [req.headers['x-forwarded-for'], req.socket.remoteAddress].filter(Boolean).join(', '),
          'x-forwarded-host': String(req.headers.host ?? ''),
          'x-forwarded-proto': 'http',
        }),
      });
      let settled = false;
      const settle = (o: 'done' | 'refused' | 'failed') => {
        if (!settled) {
          settled = true;
          if (o === 'done') lease.release();
          resolve(o);
        }
      };
      up.on('response', (r) => {
        res.writeHead(r.statusCode ?? 502, r.statusMessage, forwardHeaders(r.headers, {}));
        r.pipe(res);
        r.on('error', () => res.destroy());
        res.on('close', () => settle('done'));
      });
      up.on('error', (e: NodeJS.ErrnoException) => {
        if (res.headersSent) {
          res.destroy();
          settle('done');
        } else settle(e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' ? 'refused' : 'failed');
      });
      req.on('aborted', () => up.destroy());
      // A bodiless request may be sent again after a refusal; its (empty, ended) stream cannot be piped twice.
      if (bodiless) up.end();
      else req.pipe(up);
    });
  }

  private async upgrade(req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
    const target = this.routes[requestHost(req)];
    client.on('error', () => undefined);
    if (!target) {
      client.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.upstreams.countRequest(target.service);
    client.pause();
    let gone = false;
    client.once('close', () => (gone = true));
    const found = await connectTarget(this.upstreams, target, Date.now() + this.opts.holdMs, () => gone);
    if (!found || gone) {
      found?.socket.destroy();
      found?.lease.release();
      if (!gone) this.upstreams.traffic.error(target.service);
      if (!gone) client.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    found.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) found.socket.write(head);
    spliceTracked(client, found, this.sockets);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.front) this.front.close(() => resolve());
      else resolve();
      for (const s of this.sockets) s.destroy();
      for (const a of this.agents.values()) a.destroy();
    });
  }
}
