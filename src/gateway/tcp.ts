// A TCP listener that forwards each connection to a ready instance. The
// client's bytes wait (paused) until an upstream connection is made, so a
// refused connect is retried on another instance, or the same one a moment
// later while it starts, without the client seeing anything: a connection
// the gateway accepted is only lost if no instance takes it before the hold
// deadline.
import net from 'node:net';
import type { Logger } from '../log.js';
import type { Target } from './listeners.js';
import type { Sockets } from './sockets.js';
import type { Lease, Upstreams } from './upstreams.js';

export interface ProxyOptions {
  /** How long a connection may wait for an instance (starting, waking from zero). */
  holdMs: number;
}

/**
 * Whether a client (by its address) may use a listener: allowFrom, on
 * service addresses. A refused TCP client is reset at once, a refused UDP
 * datagram dropped. Absent: everyone (published ports).
 */
export type Admission = (clientIp: string) => Promise<boolean>;

const RETRY_PAUSE_MS = 25;

/** Connects to the instance of `lease`; resolves with the socket, or null when it refused or failed. */
export function connectUpstream(lease: Lease): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect({ host: lease.ip, port: lease.port, allowHalfOpen: true, noDelay: true });
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => {
      s.destroy();
      resolve(null);
    });
  });
}

/**
 * Finds an instance that accepts a connection for `target` before the
 * deadline: tries each ready one, waits a little when all refused (an
 * instance that is running but not listening yet), asks again.
 */
export async function connectTarget(upstreams: Upstreams, target: Target, deadline: number, gone: () => boolean): Promise<{ lease: Lease; socket: net.Socket } | null> {
  let tried = new Set<string>();
  while (!gone()) {
    const lease = await upstreams.acquire(target, deadline, tried);
    if (!lease) return null;
    const socket = await connectUpstream(lease);
    if (socket) return { lease, socket };
    upstreams.failed(lease);
    tried.add(lease.instance);
    if (Date.now() >= deadline) return null;
    if (upstreams.allTried(target.service, tried)) {
      tried = new Set();
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    }
  }
  return null;
}

/**
 * Copies `from` into `to`, pausing `from` while `to` is full, and ends `to`
 * when `from` ends. (A hand-written pipe: cheaper per chunk than stream.pipe,
 * which matters for small keep-alive requests.)
 */
function forward(from: net.Socket, to: net.Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => to.end());
}

/** Joins two sockets both ways, ending each side when the other does; `done` runs once when both are closed. */
export function splice(client: net.Socket, upstream: net.Socket, done: () => void): void {
  let open = 2;
  const closed = () => {
    if (--open === 0) done();
  };
  client.on('close', () => {
    upstream.destroy();
    closed();
  });
  upstream.on('close', () => {
    // Let what the instance sent reach the client, then close.
    client.end();
    closed();
  });
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  forward(client, upstream);
  forward(upstream, client);
  client.resume();
}

/** Splices an accepted client to the instance found for it, tracking the upstream socket until both close. */
export function spliceTracked(client: net.Socket, found: { lease: Lease; socket: net.Socket }, sockets: Set<net.Socket>): void {
  sockets.add(found.socket);
  splice(client, found.socket, () => {
    sockets.delete(found.socket);
    found.lease.release();
  });
}

/** Sends an accepted (paused) client to a ready instance of target and splices them; tracks both sockets. */
export async function proxyConnection(client: net.Socket, target: Target, upstreams: Upstreams, opts: ProxyOptions, sockets: Set<net.Socket>, admit?: Admission): Promise<void> {
  sockets.add(client);
  client.on('close', () => sockets.delete(client));
  client.on('error', () => undefined);
  if (admit && !(await admit(client.remoteAddress ?? ''))) {
    client.resetAndDestroy();
    return;
  }
  // A TCP connection is one "request" of its service for the metrics.
  upstreams.traffic.request(target.service);
  let gone = false;
  client.once('close', () => (gone = true));
  const found = await connectTarget(upstreams, target, Date.now() + opts.holdMs, () => gone);
  if (!found) {
    // No instance took it (none ready, or every one refused): an error of the service.
    if (!gone) upstreams.traffic.error(target.service);
    client.destroy();
    return;
  }
  if (gone) {
    found.socket.destroy();
    found.lease.release();
    return;
  }
  spliceTracked(client, found, sockets);
}

export class TcpListener {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(public target: Target, private readonly upstreams: Upstreams, private readonly opts: ProxyOptions & { admit?: Admission }, private readonly log: Logger) {}

  async listen(sockets: Sockets, address: string, port: number): Promise<void> {
    this.server = await sockets.tcp(address, port, (c) => void proxyConnection(c, this.target, this.upstreams, this.opts, this.sockets, this.opts.admit));
    this.server.on('error', (e) => this.log.warn({ err: e.message, address, port }, 'listener error'));
  }

  /** Stops accepting; open connections are cut (the port is no longer carte's to serve). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      for (const s of this.sockets) s.destroy();
      if (this.server) this.server.close(() => resolve());
      else resolve();
    });
  }
}
