// Which sockets the gateway must hold, from desired state. Pure: the gateway
// diffs this list against what it holds and opens or closes the difference.
//   internal   every port of every service, on the service's own address on
//              the instance network (service discovery: `login:8080`);
//   published  `ports[].publish` on the host (bind address from the manifest,
//              else the daemon's default); with `host`, an HTTP listener shared
//              by every service published on that address and port.
// Service addresses live in the gateway's own network namespace (the
// driver's), not the host's: a published port on 0.0.0.0, or any host
// program's, never collides with one.
import type { DesiredService } from '../model/instances.js';
import type { Balance, Protocol } from '../schema/types.js';

export interface Target {
  service: string;
  /** The container port connections are forwarded to. */
  port: number;
  balance: Balance;
}

/** `published`: on the host; else on a service address, in the gateway's namespace. */
export type ListenerSpec =
  | { key: string; kind: Protocol; address: string; port: number; target: Target; published: boolean }
  | { key: string; kind: 'http'; address: string; port: number; routes: Record<string, Target>; published: true };

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
  return [...out.values()];
}

/** The services a listener serves (for error reports). */
export function servicesOf(l: ListenerSpec): string[] {
  return l.kind === 'http' ? [...new Set(Object.values(l.routes).map((t) => t.service))] : [l.target.service];
}
