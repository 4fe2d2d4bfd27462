// The host's firewall for one bridge (issue 14): what instances on the
// bridge may reach, and who on the host may reach them.
//
//   instance ──veth──┐            ┌─► host (INPUT): published ports and the policy's host ports only
//   (L2: its own MAC │  bridge ───┼─► FORWARD: other instances (allowFrom), service addresses, the world
//    and IP only)    │            └─◄ host (OUTPUT): root's sockets only (the daemon, health checks)
//
// iptables (filter table) chains, named after the bridge so an admin sees
// whose they are, each jumped to from a built-in chain by a rule commented
// `carte <bridge>`, inserted first (carte's verdicts come before others'):
//   CARTE-<bridge>-IN   INPUT -i <bridge>: replies, ping, allowed host ports, else refused
//   CARTE-<bridge>-OUT  OUTPUT -o <bridge>: replies; new connections of non-root sockets refused
//   CARTE-<bridge>-FWD  FORWARD -i/-o <bridge>: replies; to a restricted service → its chain;
//                       from the bridge to itself or to the world accepted (so egress and
//                       instance traffic work under a FORWARD policy of DROP, as Docker sets
//                       it); into it from elsewhere, and into another carte bridge (interface
//                       group CARTE_DEVGROUP: another home's), dropped
//   CARTE-<bridge>-S<n> one per restricted service (allowFrom): its allowed instances' addresses,
//                       else refused at once (tcp-reset, icmp-port-unreachable)
// ebtables (nat table, PREROUTING → CARTE-<bridge>-L2): each instance's veth
// passes only ARP and IPv4 sent with its own MAC and IP; nothing else (no
// other source address, no IPv6, no VLAN tags, no broadcast or multicast IPv4,
// which would reach instances whatever their allowFrom). Done at layer 2 so it holds
// for frames to the host and to other instances alike, before conntrack.
// (The CNI bridge plugin's `macspoofchk` checks the source MAC only, not the
// addresses inside ARP or IP, and needs the `nft` program, which is not
// installed: ebtables-nft comes with iptables.)
//
// Bridged traffic between instances passes iptables' FORWARD only with
// br_netfilter (`bridge-nf-call-iptables = 1`); without it allowFrom between
// instances is the gateway's alone, which is said in the log.
//
// One source of truth: renderFirewall() computes every rule from the
// instances (leases and records) and the access the gateway decided (kept
// in a file, so any carte process making or removing an instance renders
// the same set); apply replaces carte's chains whole in one
// `iptables-restore --noflush` transaction and adds or deletes only the
// jump rules that are missing or extra, so running it twice changes nothing.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../log.js';
import { writeFileDurably } from '../../util/durable-json-file.js';
import { acquireLock } from '../../util/lock.js';
import type { HostPortAccess, NetworkAccess } from '../driver.js';
import { findExecutable, type Runner } from './exec.js';

/** An instance as the firewall sees it. */
export interface FirewallInstance {
  name: string;
  /** Its service ('' when unknown: then no allowFrom admits it). */
  service: string;
  ip: string;
  /** The host end of its veth pair and its eth0's MAC; null when unknown (no layer-2 rules then). */
  veth: string | null;
  mac: string | null;
}

export interface RuleSet {
  /** Chains carte owns (created, or flushed when they exist). */
  chains: string[];
  /** Their rules, `-A CHAIN …`. */
  rules: string[];
}

/**
 * The interface group of every carte bridge (`ip link set dev BRIDGE group`), so one home's
 * egress rule can tell another home's bridge from the world without knowing its name.
 */
export const CARTE_DEVGROUP = '0xca7e';

export const NO_ACCESS: NetworkAccess = { hostPorts: [], restricted: [] };

/** The names of a bridge's chains (an iptables chain name has at most 28 characters: a 15-character bridge fits). */
export function chainNames(bridge: string) {
  const prefix = `CARTE-${bridge}-`;
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return {
    input: `${prefix}IN`,
    output: `${prefix}OUT`,
    forward: `${prefix}FWD`,
    service: (n: number) => `${prefix}S${n}`,
    l2: `${prefix}L2`,
    /** Whether an iptables chain is one of this bridge's (not another bridge's whose name starts alike). */
    ownIp: new RegExp(`^${escaped}(IN|OUT|FWD|S\\d+)$`),
    ownL2: new RegExp(`^${escaped}L2$`),
  };
}

/** The jump rules into a bridge's chains, exactly as iptables-save and ebtables-save print them. */
export function jumpRules(bridge: string): { ip: string[]; l2: string[] } {
  const n = chainNames(bridge);
  const mark = `-m comment --comment "carte ${bridge}"`;
  return {
    ip: [
      `-A INPUT -i ${bridge} ${mark} -j ${n.input}`,
      `-A FORWARD -i ${bridge} ${mark} -j ${n.forward}`,
      `-A FORWARD -o ${bridge} ${mark} -j ${n.forward}`,
      `-A OUTPUT -o ${bridge} ${mark} -j ${n.output}`,
    ],
    l2: [`-A PREROUTING -j ${n.l2}`],
  };
}

const ipv4 = (a: string) => /^\d+\.\d+\.\d+\.\d+$/.test(a);
const byIp = (a: string, b: string) => {
  const n = (x: string) => x.split('.').reduce((s, o) => s * 256 + Number(o), 0);
  return n(a) - n(b);
};

/** The access in a stable order (sorted lists), so equal access compares equal. */
export function normalizeAccess(a: NetworkAccess): NetworkAccess {
  const key = (h: HostPortAccess) => `${h.protocol} ${String(h.port).padStart(5, '0')} ${h.address ?? ''} ${h.from?.join(',') ?? '*'}`;
  const hostPorts = a.hostPorts.map((h) => ({ port: h.port, protocol: h.protocol, address: h.address, from: h.from === null ? null : [...new Set(h.from)].sort() }));
  const unique = new Map(hostPorts.map((h) => [key(h), h]));
  return {
    hostPorts: [...unique.entries()].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, h]) => h),
    restricted: a.restricted.map((r) => ({ service: r.service, address: r.address, from: [...new Set(r.from)].sort() }))
      .sort((x, y) => (x.service < y.service ? -1 : x.service > y.service ? 1 : 0)),
  };
}

/**
 * Every rule of a bridge, from its instances and the access decided for
 * them. Pure: the same input gives the same text.
 */
export function renderFirewall(bridge: string, instances: readonly FirewallInstance[], access: NetworkAccess): { ip: RuleSet; l2: RuleSet } {
  const n = chainNames(bridge);
  const sorted = [...instances].sort((a, b) => byIp(a.ip, b.ip));
  const ipsOf = (services: ReadonlySet<string>) => sorted.filter((i) => services.has(i.service)).map((i) => i.ip);
  const { hostPorts, restricted } = normalizeAccess(access);

  const input = [
    `-A ${n.input} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    // The kernel's own answer to ping (of the instances' gateway, usually): no host program is reached.
    `-A ${n.input} -p icmp -m icmp --icmp-type 8 -j ACCEPT`,
  ];
  for (const h of hostPorts) {
    // An IPv6 address is not this table's (instances have no IPv6: layer 2 drops it).
    if (h.address !== null && !ipv4(h.address)) continue;
    const to = h.address === null || h.address === '0.0.0.0' ? '' : ` -d ${h.address}/32`;
    const match = `${to} -p ${h.protocol} -m ${h.protocol} --dport ${h.port} -j ACCEPT`;
    if (h.from === null) input.push(`-A ${n.input}${match}`);
    else for (const ip of ipsOf(new Set(h.from))) input.push(`-A ${n.input} -s ${ip}/32${match}`);
  }
  input.push(`-A ${n.input} -j REJECT --reject-with icmp-admin-prohibited`);

  const output = [
    `-A ${n.output} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    // --socket-exists: packets the kernel sends on no socket's behalf (a reset, an ICMP error) are not refused.
    `-A ${n.output} -m owner --socket-exists ! --uid-owner 0 -j REJECT --reject-with icmp-admin-prohibited`,
  ];

  const forward = [`-A ${n.forward} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`];
  const serviceChains: string[] = [];
  const serviceRules: string[] = [];
  const everyService = new Set(sorted.map((i) => i.service));
  for (const r of restricted) {
    const allowed = new Set([...r.from, r.service]);
    const targets = [...sorted.filter((i) => i.service === r.service).map((i) => i.ip), ...(r.address ? [r.address] : [])];
    // Nothing to guard, or every instance on the bridge is allowed anyway (one source's services, the usual case).
    if (!targets.length || [...everyService].every((s) => allowed.has(s))) continue;
    const chain = n.service(serviceChains.length + 1);
    serviceChains.push(chain);
    for (const ip of targets) forward.push(`-A ${n.forward} -d ${ip}/32 -m comment --comment "to ${r.service}" -j ${chain}`);
    for (const ip of ipsOf(allowed)) serviceRules.push(`-A ${chain} -s ${ip}/32 -j ACCEPT`);
    serviceRules.push(`-A ${chain} -p tcp -j REJECT --reject-with tcp-reset`, `-A ${chain} -j REJECT --reject-with icmp-port-unreachable`);
  }
  forward.push(
    `-A ${n.forward} -i ${bridge} -o ${bridge} -j ACCEPT`,
    // Egress, but not into another carte bridge: an ACCEPT here ends FORWARD, so the other home's
    // own `-o` rules would never see the packet (its chain is jumped to after this one).
    `-A ${n.forward} -i ${bridge} -m devgroup ! --dst-group ${CARTE_DEVGROUP} -j ACCEPT`,
    `-A ${n.forward} -j DROP`,
  );

  const l2: string[] = [];
  for (const i of sorted) {
    if (!i.veth || !i.mac) continue;
    l2.push(
      // Broadcast and multicast reach every instance on the bridge whatever its allowFrom (which
      // matches instance addresses): none are sent; carte's services need neither (no DHCP).
      `-A ${n.l2} -i ${i.veth} -p IPv4 -d Multicast -j DROP`,
      `-A ${n.l2} -i ${i.veth} -s ${i.mac} -p ARP --arp-ip-src ${i.ip} --arp-mac-src ${i.mac} -j RETURN`,
      `-A ${n.l2} -i ${i.veth} -s ${i.mac} -p IPv4 --ip-src ${i.ip} -j RETURN`,
      `-A ${n.l2} -i ${i.veth} -j DROP`,
    );
  }
  return {
    ip: { chains: [n.input, n.output, n.forward, ...serviceChains], rules: [...input, ...output, ...forward, ...serviceRules] },
    l2: { chains: [n.l2], rules: l2 },
  };
}

/**
 * The restore input that turns what `saved` (iptables-save / ebtables-save
 * of the table) shows into `desired` (null: nothing of this bridge's):
 * carte's chains declared (created or flushed) and filled, stale ones
 * deleted, jump rules added where missing (first in their chain) and
 * deleted where extra or repeated. null when there is nothing to do.
 */
export function restoreInput(kind: 'ip' | 'l2', bridge: string, saved: string, desired: RuleSet | null): string | null {
  const names = chainNames(bridge);
  const own = kind === 'ip' ? names.ownIp : names.ownL2;
  const builtin = kind === 'ip' ? ['INPUT', 'OUTPUT', 'FORWARD'] : ['PREROUTING'];
  const lines = saved.split('\n').map((l) => l.trim());
  const existing = lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(/\s/)[0]!).filter((c) => own.test(c));
  const jumps = lines.filter((l) => {
    const m = /^-A (\S+) .*-j (\S+)$/.exec(l);
    return m !== null && builtin.includes(m[1]!) && own.test(m[2]!);
  });
  if (!desired && !existing.length && !jumps.length) return null;
  const wantChains = desired?.chains ?? [];
  const wantJumps = desired ? jumpRules(bridge)[kind] : [];
  const out: string[] = [];
  for (const c of [...new Set([...wantChains, ...existing])]) out.push(kind === 'ip' ? `:${c} - [0:0]` : `:${c} RETURN`);
  const kept = new Set<string>();
  for (const j of jumps) {
    if (wantJumps.includes(j) && !kept.has(j)) kept.add(j);
    else out.push(j.replace(/^-A /, '-D '));
  }
  for (const c of existing) if (!wantChains.includes(c)) out.push(`-X ${c}`);
  // Inserted at the top in reverse, so they end up first and in order.
  for (const j of [...wantJumps].reverse()) if (!kept.has(j)) out.push(j.replace(/^-A (\S+) /, '-I $1 1 '));
  out.push(...(desired?.rules ?? []));
  return kind === 'ip' ? `*filter\n${out.join('\n')}\nCOMMIT\n` : `*nat\n${out.join('\n')}\n`;
}

/** What the firewall reads about an instance from its record. */
export interface InstanceFacts {
  service: string;
  veth: string | null;
  mac: string | null;
  /** Its network namespace's name, to find veth and MAC when the record lacks them (made by an older carte). */
  netns: string | null;
}

export interface FirewallOptions {
  bridge: string;
  /** Where the access last decided is kept (for every carte process of this home). */
  accessFile: string;
  /** Leased addresses and their instances (the truth about who holds which address). */
  leases(): Promise<Array<{ ip: string; instance: string }>>;
  /** The record's facts of an instance; null when it has no readable record. */
  facts(instance: string): InstanceFacts | null;
  log: Logger;
}

/** How long an unchanged access is trusted to be in place before it is applied again anyway. */
const REAPPLY_MS = 60_000;

export class Firewall {
  /** The access this process last applied, and when; null: not yet (the first call always applies). */
  private applied: { json: string; at: number } | null = null;
  private chain: Promise<void> = Promise.resolve();
  private pending: Promise<void> | null = null;
  private warnedNoBrNetfilter = false;
  /** veth and MAC found for instances whose records lack them, by instance and address. */
  private readonly found = new Map<string, { veth: string; mac: string }>();

  constructor(private readonly runner: Runner, private readonly opts: FirewallOptions) {}

  /** The access last decided (none when never). */
  readAccess(): NetworkAccess {
    try {
      const a = JSON.parse(fs.readFileSync(this.opts.accessFile, 'utf8')) as NetworkAccess;
      return Array.isArray(a.hostPorts) && Array.isArray(a.restricted) ? a : NO_ACCESS;
    } catch {
      return NO_ACCESS;
    }
  }

  /** Keeps `access` and applies the rules, unless this process applied the same a moment ago. */
  async setAccess(access: NetworkAccess): Promise<void> {
    const json = JSON.stringify(normalizeAccess(access));
    if (this.applied?.json === json && Date.now() - this.applied.at < REAPPLY_MS) return;
    const current = await fsp.readFile(this.opts.accessFile, 'utf8').catch(() => null);
    if (current !== json) {
      // Durably: a torn file would read as "no restrictions" after a crash.
      await writeFileDurably(this.opts.accessFile, json);
    }
    await this.sync();
    this.applied = { json, at: Date.now() };
  }

  /**
   * Renders the rules from the machine's state and the kept access and
   * applies them. Calls made while one runs share the next run (which
   * starts after they were made, so it sees what they changed).
   */
  sync(): Promise<void> {
    if (this.pending) return this.pending;
    const run = this.chain.then(() => {
      this.pending = null;
      return this.locked(async () => {
        const exists = fs.existsSync(`/sys/class/net/${this.opts.bridge}`);
        if (exists) await this.markBridge();
        await this.apply(exists ? renderFirewall(this.opts.bridge, await this.instances(), this.readAccess()) : null);
        if (exists) this.checkBrNetfilter();
      });
    });
    this.pending = run;
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Removes every rule and chain of the bridge; nothing there is fine. */
  remove(): Promise<void> {
    this.applied = null;
    const run = this.chain.then(() => this.locked(() => this.apply(null)));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** The instances that hold an address, with what their records say. */
  async instances(): Promise<FirewallInstance[]> {
    const out: FirewallInstance[] = [];
    for (const { ip, instance } of await this.opts.leases()) {
      if (!ipv4(ip)) continue;
      const facts = this.opts.facts(instance);
      let link = facts?.veth && facts.mac ? { veth: facts.veth, mac: facts.mac } : null;
      if (!link && facts?.netns) link = await this.discover(instance, ip, facts.netns);
      out.push({ name: instance, service: facts?.service ?? '', ip, veth: link?.veth ?? null, mac: link?.mac ?? null });
    }
    return out;
  }

  /** veth and MAC of an instance from its namespace (a record of an older carte does not say). */
  private async discover(instance: string, ip: string, netns: string): Promise<{ veth: string; mac: string } | null> {
    const key = `${instance} ${ip}`;
    const known = this.found.get(key);
    if (known && fs.existsSync(`/sys/class/net/${known.veth}`)) return known;
    if (!fs.existsSync(path.join('/run/netns', netns))) return null;
    const show = await this.runner.run('ip', ['-n', netns, '-j', 'link', 'show', 'dev', 'eth0'], { step: 'look at the network of', resource: instance, okCodes: [1] });
    const eth0 = show.code === 0 ? (JSON.parse(show.stdout || '[]') as Array<{ address?: string; link_index?: number }>)[0] : undefined;
    if (!eth0?.address || eth0.link_index === undefined) return null;
    const ports = fs.existsSync(`/sys/class/net/${this.opts.bridge}/brif`) ? fs.readdirSync(`/sys/class/net/${this.opts.bridge}/brif`) : [];
    const veth = ports.find((p) => {
      try {
        return Number(fs.readFileSync(`/sys/class/net/${p}/ifindex`, 'utf8')) === eth0.link_index;
      } catch {
        return false;
      }
    });
    if (!veth) return null;
    const link = { veth, mac: eth0.address };
    this.found.set(key, link);
    return link;
  }

  /** Puts the bridge in carte's interface group (a bridge made by an older carte is not in it). */
  private async markBridge(): Promise<void> {
    const file = `/sys/class/net/${this.opts.bridge}/netdev_group`;
    const group = await fsp.readFile(file, 'utf8').catch(() => null);
    if (group === null || Number(group.trim()) === Number(CARTE_DEVGROUP)) return;
    await this.runner.run('ip', ['link', 'set', 'dev', this.opts.bridge, 'group', String(Number(CARTE_DEVGROUP))], { step: 'mark', resource: `bridge ${this.opts.bridge}` });
  }

  private async locked(fn: () => Promise<void>): Promise<void> {
    const lock = await acquireLock(`${this.opts.accessFile}.apply`, { timeoutMs: 30_000 });
    try {
      await fn();
    } finally {
      await lock.release();
    }
  }

  private async apply(desired: { ip: RuleSet; l2: RuleSet } | null): Promise<void> {
    const resource = `the firewall of bridge ${this.opts.bridge}`;
    const tool = (name: string) => findExecutable(name) ?? name;
    const hint = 'iptables (nf_tables, with ebtables-nft) is needed: run "make setup" as root';
    const [ipSaved, l2Saved] = await Promise.all([
      this.runner.run(tool('iptables-save'), ['-t', 'filter'], { step: 'read', resource, hint }),
      this.runner.run(tool('ebtables-save'), ['-t', 'nat'], { step: 'read', resource, hint }),
    ]);
    const ipInput = restoreInput('ip', this.opts.bridge, ipSaved.stdout, desired?.ip ?? null);
    const l2Input = restoreInput('l2', this.opts.bridge, l2Saved.stdout, desired?.l2 ?? null);
    // Layer 2 first when adding (no instance traffic before its address is pinned), last when removing.
    const steps: Array<[string, string | null]> = [[tool('ebtables-restore'), l2Input], [tool('iptables-restore'), ipInput]];
    if (!desired) steps.reverse();
    for (const [file, input] of steps) {
      if (input === null) continue;
      await this.runner.run(file, ['--noflush'], { step: desired ? 'set' : 'remove', resource, input, hint });
    }
  }

  private checkBrNetfilter(): void {
    if (this.warnedNoBrNetfilter) return;
    let on = false;
    try {
      on = fs.readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1';
    } catch {
      // br_netfilter not loaded
    }
    if (on) return;
    this.warnedNoBrNetfilter = true;
    this.opts.log.warn({ bridge: this.opts.bridge }, 'br_netfilter is off (net.bridge.bridge-nf-call-iptables != 1): traffic between instances does not pass iptables, so allowFrom is enforced on service addresses by the gateway only (modprobe br_netfilter; sysctl net.bridge.bridge-nf-call-iptables=1)');
  }
}
