// Which sockets the gateway must hold, from desired state. Pure: the gateway
// diffs this list against what it holds and opens or closes the difference.
//   internal   every port of every service, on the service's own address on
//              the instance network (service discovery: `login:8080`);
//   published  `ports[].publish` on the host (bind address from the manifest,
//              else the daemon's default); with `host`, an HTTP listener shared
//              by every service published on that address and port.
// A published port on a wildcard address (0.0.0.0, ::) also receives what is
// sent to a service address on the same port: the kernel refuses to bind
// both. So the wildcard listener takes over those service addresses and picks
// the target by the connection's local address (`local`); for UDP, where the
// local address is not known, only a service address with the same target is
// taken over (a different one stays a reported bind conflict).
import type { DesiredService } from '../model/instances.js';
import type { Balance, Protocol } from '../schema/types.js';

export interface Target {
  service: string;
  /** The container port connections are forwarded to. */
  port: number;
  balance: Balance;
}

export type ListenerSpec =
  | { key: string; kind: Protocol; address: string; port: number; target: Target; published: boolean; local?: Record<string, Target> }
  | { key: string; kind: 'http'; address: string; port: number; routes: Record<string, Target>; published: true; local?: Record<string, Target> };

const WILDCARD = new Set(['0.0.0.0', '::']);
const sameTarget = (a: Target, b: Target) => a.service === b.service && a.port === b.port;

export function listenerKey(kind: string, address: string, port: number): string {
  return `${kind} ${address.includes(':') ? `[${address}]` : address}:${port}`;
}

export function wantedListeners(services: readonly DesiredService[], addresses: Readonly<Record<string, string>>, defaultAddress: string): ListenerSpec[] {
  const out = new Map<string, ListenerSpec>();
  for (const svc of [...services].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    for (const p of svc.spec.ports) {
      const target: Target = { service: svc.name, port: p.port, balance: p.balance };
      const vip = addresses[svc.name];
      if (vip) {
        const key = listenerKey(p.protocol, vip, p.port);
        out.set(key, { key, kind: p.protocol, address: vip, port: p.port, target, published: false });
      }
      if (!p.publish) continue;
      const address = p.publish.address ?? defaultAddress;
      if (p.publish.host) {
        const key = listenerKey('http', address, p.publish.port);
        const existing = out.get(key);
        const routes = existing?.kind === 'http' ? existing.routes : {};
        routes[p.publish.host.toLowerCase()] ??= target;
        out.set(key, { key, kind: 'http', address, port: p.publish.port, routes, published: true });
      } else {
        const key = listenerKey(p.protocol, address, p.publish.port);
        // Two services on one key are refused at apply (set checks); the first keeps it if it happens anyway.
        if (!out.has(key)) out.set(key, { key, kind: p.protocol, address, port: p.publish.port, target, published: true });
      }
    }
  }
  for (const wide of [...out.values()].filter((l) => l.published && WILDCARD.has(l.address))) {
    const covered = [...out.values()].filter((l) => !l.published && l.port === wide.port && (l.kind === wide.kind || (wide.kind === 'http' && l.kind === 'tcp')));
    for (const inner of covered) {
      if (inner.kind === 'http') continue;
      if (inner.kind === 'udp' && !(wide.kind === 'udp' && sameTarget(wide.target, inner.target))) continue;
      (wide.local ??= {})[inner.address] = inner.target;
      out.delete(inner.key);
    }
  }
  return [...out.values()];
}

/** The services a listener serves (for error reports). */
export function servicesOf(l: ListenerSpec): string[] {
  return l.kind === 'http' ? [...new Set(Object.values(l.routes).map((t) => t.service))] : [l.target.service];
}
