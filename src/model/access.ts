// Who may reach what on the instances' network (issue 14): a service's
// allowFrom (or, when its manifest says nothing, the server policy's
// network.allowFromDefault for its source), published ports and the
// policy's host ports. Pure: the gateway enforces the result on service
// addresses and hands it to the driver, which enforces it on the host's
// firewall; `carte describe` says it in words.
import type { HostPortAccess, NetworkAccess } from '../drivers/driver.js';
import type { DesiredService, Membership } from './instances.js';

export type AllowFromDefault = 'same-source' | 'all' | 'none';

/** The server policy's network rules for one source (its section's, else the top level's). */
export interface AccessRules {
  allowFromDefault: AllowFromDefault;
  hostPorts: ReadonlyArray<{ port: number; protocol: 'tcp' | 'udp' }>;
}

/** The rules of a source; null: the top level's (for instances of no known service). */
export type AccessRulesOf = (source: string | null) => AccessRules;

/** Built-in: a service takes connections from its own source's services; no host port. */
export const DEFAULT_ACCESS_RULES: AccessRules = { allowFromDefault: 'same-source', hostPorts: [] };

/**
 * Who may connect to a service: every instance (`all`), or the instances
 * of the services listed (the service itself is always among them), and why.
 */
export type Allowed =
  | { kind: 'all'; why: 'manifest' | 'policy' }
  | { kind: 'services'; services: string[]; why: 'manifest' | 'same-source' | 'none' };

export function allowedFrom(svc: Pick<DesiredService, 'name' | 'source' | 'spec'>, services: ReadonlyArray<Pick<DesiredService, 'name' | 'source'>>, rulesOf: AccessRulesOf): Allowed {
  const listed = svc.spec.allowFrom;
  if (listed) {
    if (listed.includes('*')) return { kind: 'all', why: 'manifest' };
    return { kind: 'services', services: [...new Set([svc.name, ...listed])].sort(), why: 'manifest' };
  }
  switch (rulesOf(svc.source).allowFromDefault) {
    case 'all':
      return { kind: 'all', why: 'policy' };
    case 'none':
      return { kind: 'services', services: [svc.name], why: 'none' };
    case 'same-source':
      return { kind: 'services', services: services.filter((s) => s.source === svc.source).map((s) => s.name).concat(svc.name).filter((n, i, a) => a.indexOf(n) === i).sort(), why: 'same-source' };
  }
}

/** `Allowed from:` of `carte describe` (a service always reaches itself, so it is not named). */
export function describeAllowed(svc: Pick<DesiredService, 'name' | 'source'>, a: Allowed): string {
  if (a.kind === 'all') return a.why === 'manifest' ? 'every service (allowFrom: ["*"])' : 'every service (the server policy\'s allowFromDefault)';
  const others = a.services.filter((s) => s !== svc.name);
  switch (a.why) {
    case 'manifest':
      return others.length ? others.join(', ') : 'no other service (allowFrom: [])';
    case 'same-source':
      return `every service of source ${svc.source}`;
    case 'none':
      return 'no other service (the server policy\'s allowFromDefault)';
  }
}

/** A published listener: a port of the host's own addresses. */
export interface PublishedPort {
  port: number;
  protocol: 'tcp' | 'udp';
  /** Its bind address (0.0.0.0 or `::`: every address). */
  address: string;
}

/**
 * The network access for a membership: published ports open to every
 * instance; the policy's host ports to the instances of services whose
 * source's section lists them (every instance when the top level and every
 * service's section list it); each service that not every service may reach
 * restricted to those that may.
 */
export function networkAccess(m: Pick<Membership, 'services' | 'addresses'>, published: readonly PublishedPort[], rulesOf: AccessRulesOf): NetworkAccess {
  const hostPorts: HostPortAccess[] = published.map((p) => ({ port: p.port, protocol: p.protocol, address: p.address === '0.0.0.0' || p.address === '::' ? null : p.address, from: null }));
  const byPort = new Map<string, { port: number; protocol: 'tcp' | 'udp'; services: string[] }>();
  const key = (h: { port: number; protocol: string }) => `${h.protocol}/${h.port}`;
  for (const s of m.services) {
    for (const h of rulesOf(s.source).hostPorts) {
      const entry = byPort.get(key(h)) ?? { port: h.port, protocol: h.protocol, services: [] };
      entry.services.push(s.name);
      byPort.set(key(h), entry);
    }
  }
  const top = new Set(rulesOf(null).hostPorts.map(key));
  for (const p of rulesOf(null).hostPorts) if (!byPort.has(key(p))) byPort.set(key(p), { port: p.port, protocol: p.protocol, services: [] });
  for (const [k, e] of byPort) {
    const everyone = top.has(k) && e.services.length === m.services.length;
    hostPorts.push({ port: e.port, protocol: e.protocol, address: null, from: everyone ? null : e.services.sort() });
  }
  const restricted: NetworkAccess['restricted'] = [];
  for (const s of m.services) {
    const a = allowedFrom(s, m.services, rulesOf);
    if (a.kind === 'services') restricted.push({ service: s.name, address: m.addresses[s.name] ?? null, from: a.services });
  }
  return { hostPorts, restricted };
}
