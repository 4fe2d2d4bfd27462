// A UDP listener: datagrams from one client address form a flow, pinned to
// one instance through its own upstream socket, so replies come back to the
// right client. A flow ends after idleMs without datagrams either way, or
// when its instance leaves rotation (the next datagram picks another).
// Datagrams that arrive while a flow waits for an instance (starting, waking
// from zero) are queued, a few at most.
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '../log.js';
import type { Target } from './listeners.js';
import type { Sockets } from './sockets.js';
import type { Admission } from './tcp.js';
import type { Lease, Upstreams } from './upstreams.js';

const QUEUE_MAX = 32;

interface Flow {
  lease: Lease | null;
  socket: dgram.Socket | null;
  queue: Buffer[];
  lastAt: number;
}

export class UdpListener {
  private socket: dgram.Socket | null = null;
  private readonly flows = new Map<string, Flow>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(public target: Target, private readonly upstreams: Upstreams, private readonly opts: { holdMs: number; idleMs: number; admit?: Admission }, private readonly log: Logger) {}

  async listen(sockets: Sockets, address: string, port: number): Promise<void> {
    this.socket = await sockets.udp(address, port, (msg, rinfo) => this.receive(msg, rinfo));
    this.socket.on('error', (e) => this.log.warn({ err: e.message }, 'udp listener error'));
    this.sweeper = setInterval(() => this.sweep(), Math.min(this.opts.idleMs, 5000));
  }

  private receive(msg: Buffer, from: dgram.RemoteInfo): void {
    const key = `${from.address}:${from.port}`;
    let flow = this.flows.get(key);
    if (flow?.lease && this.upstreams.isDraining(flow.lease.instance)) {
      this.end(key, flow);
      flow = undefined;
    }
    if (!flow) {
      flow = { lease: null, socket: null, queue: [], lastAt: Date.now() };
      this.flows.set(key, flow);
      void this.open(key, flow, from);
    }
    flow.lastAt = Date.now();
    if (flow.socket && flow.lease) flow.socket.send(msg, flow.lease.port, flow.lease.ip);
    else if (flow.queue.length < QUEUE_MAX) flow.queue.push(msg);
  }

  private async open(key: string, flow: Flow, from: dgram.RemoteInfo): Promise<void> {
    // A client allowFrom refuses gets no flow: its datagrams are dropped (the next one asks again).
    if (this.opts.admit && !(await this.opts.admit(from.address))) {
      if (this.flows.get(key) === flow) this.flows.delete(key);
      return;
    }
    const lease = await this.upstreams.acquire(this.target, Date.now() + this.opts.holdMs);
    if (!lease || this.flows.get(key) !== flow || !this.socket) {
      lease?.release();
      if (this.flows.get(key) === flow) this.flows.delete(key);
      return;
    }
    const upstream = dgram.createSocket({ type: net.isIPv6(lease.ip) ? 'udp6' : 'udp4' });
    upstream.on('error', () => this.end(key, flow));
    upstream.on('message', (reply, r) => {
      if (r.address !== lease.ip) return;
      flow.lastAt = Date.now();
      this.socket?.send(reply, from.port, from.address);
    });
    flow.lease = lease;
    flow.socket = upstream;
    for (const m of flow.queue.splice(0)) upstream.send(m, lease.port, lease.ip);
  }

  private end(key: string, flow: Flow): void {
    if (this.flows.get(key) === flow) this.flows.delete(key);
    flow.socket?.close();
    flow.socket = null;
    flow.lease?.release();
    flow.lease = null;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, flow] of this.flows) if (flow.lease && now - flow.lastAt >= this.opts.idleMs) this.end(key, flow);
  }

  /** Open flows (for tests and describe). */
  get flowCount(): number {
    return this.flows.size;
  }

  close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const [key, flow] of this.flows) this.end(key, flow);
    return new Promise((resolve) => {
      try {
        if (this.socket) this.socket.close(() => resolve());
        else resolve();
      } catch {
        resolve(); // never bound
      }
    });
  }
}
