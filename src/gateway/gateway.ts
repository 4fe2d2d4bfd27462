// The gateway, run inside the daemon: it owns every port carte publishes and
// every service address containers use to reach each other (those live in
// the driver's gateway namespace, out of the host's reach: their sockets come
// from the driver's serviceSockets, published ones are bound here). It follows the
// reconciler's membership (after every pass and readiness change): opens and
// closes listeners to match desired state, and sends each connection to a
// ready instance. A port it cannot bind is reported for its service and
// retried later; it never stops the other listeners or the daemon.
import type { ServiceSockets } from '../drivers/driver.js';
import type { Logger } from '../log.js';
import type { NetworkAccess } from '../drivers/driver.js';
import { DEFAULT_ACCESS_RULES, networkAccess, type AccessRulesOf } from '../model/access.js';
import type { Membership } from '../model/instances.js';
import { HttpListener } from './http.js';
import { servicesOf, wantedListeners, type ListenerSpec } from './listeners.js';
import { hostSockets, type Sockets } from './sockets.js';
import { TcpListener } from './tcp.js';
import { UdpListener } from './udp.js';
import type { TrafficCounters } from './stats.js';
import { Upstreams, type Activity } from './upstreams.js';

/** A service's traffic for the metrics collector: cumulative counters and its open connections now. */
export interface ServiceTraffic extends TrafficCounters {
  connections: number;
}

export interface GatewayOptions {
  log: Logger;
  /** Bind address of published ports that do not name one. */
  defaultAddress: string;
  /**
   * Makes the service addresses reachable from instances (the driver's
   * setServiceAddresses: cheap when nothing changed, so called on every
   * update); resolves to where they are, which changes when that place was
   * made again (then the sockets on them are made again too).
   */
  setServiceAddresses(ips: readonly string[]): Promise<string>;
  /** Where sockets on service addresses are made (the driver's serviceSockets). */
  serviceSockets: Pick<ServiceSockets, 'tcp' | 'udp'>;
  /**
   * Enforces who reaches what on the instances' network (the driver's
   * setNetworkAccess: cheap when unchanged, so called on every update).
   */
  setNetworkAccess?(access: NetworkAccess): Promise<void>;
  /** The server policy's network rules of a source (allowFrom default, host ports); default: same-source, none. */
  accessRules?: AccessRulesOf;
  /** Asks for one instance of a service sleeping at zero (writes desired state). */
  wake(service: string): Promise<void>;
  /** The ports the gateway cannot serve changed: service → why (empty: all served). */
  onPortErrors(errors: Record<string, string>): void;
  /** Connections are waiting for a service: check its starting instances often (the reconciler's hurry). */
  hurry?(service: string): void;
  /** How long a connection waits for an instance to start or wake (default 30 s). */
  holdMs?: number;
  /** How long a connection to a service address from an address no instance is known to hold waits to learn whose it is (default 5 s). */
  unknownClientMs?: number;
  /** A UDP flow ends after this long without datagrams (default 30 s). */
  udpIdleMs?: number;
  /** A port that could not be bound is tried again after this long (default 10 s). */
  retryBindMs?: number;
  clock?: () => number;
}

type Impl = TcpListener | UdpListener | HttpListener;

/** What a bind error means to the user, and what to do. */
export function bindProblem(l: ListenerSpec, e: NodeJS.ErrnoException): string {
  const where = `port ${l.port}/${l.kind === 'http' ? 'tcp (http)' : l.kind} on ${l.address}`;
  switch (e.code) {
    case 'EADDRINUSE':
      return `${where} is in use by another program; stop it, or publish another port`;
    case 'EACCES':
      return `${where}: permission denied (ports below 1024 need root)`;
    case 'EADDRNOTAVAIL':
      return `${where}: ${l.address} is not an address of this host; publish on one of its addresses (or leave address out)`;
    default:
      return `${where}: ${e.message}`;
  }
}

export class Gateway {
  readonly upstreams: Upstreams;
  private readonly open = new Map<string, { spec: ListenerSpec; impl: Impl }>();
  private readonly failed = new Map<string, { problem: string; at: number }>();
  private readonly waking = new Set<string>();
  /** Where the service addresses are (setServiceAddresses's answer), null until known. */
  private addressesIn: string | null = null;
  private addressProblem: string | null = null;
  /** null until the first update, which always reports (clearing what an earlier daemon left). */
  private errorsReported: string | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly holdMs: number;
  private readonly clock: () => number;
  private readonly published: Sockets = hostSockets();

  constructor(private readonly opts: GatewayOptions) {
    this.clock = opts.clock ?? Date.now;
    this.holdMs = opts.holdMs ?? 30_000;
    this.upstreams = new Upstreams({ wake: (s) => this.wake(s), waiting: (s) => opts.hurry?.(s), clock: this.clock });
  }

  /** Follows a new membership; updates are applied one at a time, in order. */
  update(m: Membership): Promise<void> {
    this.chain = this.chain.then(() => this.apply(m)).catch((e: Error) => this.opts.log.error({ err: e.message }, 'gateway update failed'));
    return this.chain;
  }

  activity(service: string): Activity {
    return this.upstreams.activityOf(service);
  }

  traffic(service: string): ServiceTraffic {
    return { connections: this.upstreams.activityOf(service).active, ...this.upstreams.traffic.read(service) };
  }

  /** Takes an instance out of rotation; resolves when its connections ended or after graceMs. */
  async drain(instance: string, graceMs: number): Promise<void> {
    await this.upstreams.drain(instance, graceMs);
    for (const { impl } of this.open.values()) if (impl instanceof HttpListener) impl.prune((i) => !this.upstreams.isDraining(i));
  }

  /** Addresses and ports it listens on now (for describe and tests). */
  listening(): string[] {
    return [...this.open.keys()].sort();
  }

  private wake(service: string): void {
    if (this.waking.has(service)) return;
    this.waking.add(service);
    this.opts.log.info({ service }, 'waking a service at zero for a waiting connection');
    this.opts.wake(service).catch((e: Error) => {
      this.waking.delete(service);
      this.opts.log.error({ service, err: e.message }, 'could not wake service');
    });
  }

  private async apply(m: Membership): Promise<void> {
    if (this.closed) return;
    const rulesOf = this.opts.accessRules ?? (() => DEFAULT_ACCESS_RULES);
    const published = wantedListeners(m.services, {}, this.opts.defaultAddress).map((l) => ({ port: l.port, protocol: l.kind === 'udp' ? 'udp' as const : 'tcp' as const, address: l.address }));
    const access = networkAccess(m, published, rulesOf);
    this.upstreams.update(m, access.restricted);
    for (const s of m.services) if (s.spec.replicas > 0) this.waking.delete(s.name);
    const live = new Set(m.instances.map((i) => i.name));
    for (const { impl } of this.open.values()) if (impl instanceof HttpListener) impl.prune((i) => live.has(i) && !this.upstreams.isDraining(i));

    // Level-based: the driver compares with what is there, so a namespace removed by hand is made again.
    const ips = [...new Set(Object.values(m.addresses))].sort();
    try {
      const place = await this.opts.setServiceAddresses(ips);
      // `none`: there was no place yet, so no listener on it either.
      if (this.addressesIn !== null && this.addressesIn !== 'none' && place !== this.addressesIn) {
        this.opts.log.warn({ was: this.addressesIn, now: place }, 'the service addresses were made again; opening their listeners again');
        for (const [key, { spec, impl }] of this.open) {
          if (spec.published) continue;
          this.open.delete(key);
          await impl.close();
        }
      }
      this.addressesIn = place;
      this.addressProblem = null;
    } catch (e) {
      this.addressProblem = `service addresses could not be set up: ${(e as Error).message}`;
    }

    // The host's firewall follows (instances' own addresses, published ports); a failure is
    // logged and tried again with the next update: the gateway's own check still holds.
    if (this.opts.setNetworkAccess) {
      await this.opts.setNetworkAccess(access).catch((e: Error) => this.opts.log.error({ err: e.message }, 'could not set the network access rules'));
    }

    const wanted = wantedListeners(m.services, this.addressProblem ? {} : m.addresses, this.opts.defaultAddress);
    const keys = new Set(wanted.map((l) => l.key));
    for (const [key, { impl }] of this.open) {
      if (!keys.has(key)) {
        this.open.delete(key);
        await impl.close();
      }
    }
    for (const key of this.failed.keys()) if (!keys.has(key)) this.failed.delete(key);
    const now = this.clock();
    const errors: Record<string, string> = {};
    for (const spec of wanted) {
      const held = this.open.get(spec.key);
      if (held) {
        held.spec = spec;
        if (held.impl instanceof HttpListener && spec.kind === 'http') held.impl.routes = spec.routes;
        else if (!(held.impl instanceof HttpListener) && spec.kind !== 'http') held.impl.target = spec.target;
        continue;
      }
      const failure = this.failed.get(spec.key);
      if (failure && now - failure.at < (this.opts.retryBindMs ?? 10_000)) {
        for (const s of servicesOf(spec)) errors[s] ??= failure.problem;
        continue;
      }
      const impl = this.make(spec);
      try {
        await impl.listen(spec.published ? this.published : this.opts.serviceSockets, spec.address, spec.port);
        this.open.set(spec.key, { spec, impl });
        this.failed.delete(spec.key);
        this.opts.log.info({ listener: spec.key, services: servicesOf(spec) }, 'listening');
      } catch (e) {
        await impl.close().catch(() => undefined);
        const problem = bindProblem(spec, e as NodeJS.ErrnoException);
        this.failed.set(spec.key, { problem, at: now });
        this.opts.log.warn({ listener: spec.key, err: problem }, 'cannot listen');
        for (const s of servicesOf(spec)) errors[s] ??= problem;
      }
    }
    if (this.addressProblem) for (const s of Object.keys(m.addresses)) errors[s] ??= this.addressProblem;
    const json = JSON.stringify(errors);
    if (json !== this.errorsReported) {
      this.errorsReported = json;
      this.opts.onPortErrors(errors);
    }
  }

  private make(spec: ListenerSpec): Impl {
    const hold = { holdMs: this.holdMs };
    // On a service address, a client is an instance: allowFrom decides (published ports are open to all).
    const admit = (target: { service: string }) => (spec.published ? undefined
      : (ip: string) => this.upstreams.admits(target.service, ip, this.clock() + (this.opts.unknownClientMs ?? 5000)));
    switch (spec.kind) {
      case 'tcp':
        return new TcpListener(spec.target, this.upstreams, { ...hold, admit: admit(spec.target) }, this.opts.log);
      case 'udp':
        return new UdpListener(spec.target, this.upstreams, { ...hold, idleMs: this.opts.udpIdleMs ?? 30_000, admit: admit(spec.target) }, this.opts.log);
      case 'http':
        return new HttpListener(spec.routes, this.upstreams, hold, this.opts.log);
    }
  }

  /** Closes every listener and ends waits; service addresses stay (instances keep them in /etc/hosts). The caller ends the driver's serviceSockets. */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    this.upstreams.close();
    for (const { impl } of this.open.values()) await impl.close();
    this.open.clear();
  }
}
