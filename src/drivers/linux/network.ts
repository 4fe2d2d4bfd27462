// Networking through the CNI reference plugins (Debian's
// containernetworking-plugins): one network namespace per instance, joined to
// a bridge by `bridge` with `host-local` address management, plus `loopback`.
// The veth pair, the address and the routes come from the standard plugins.
// CNI spec: https://github.com/containernetworking/cni/blob/main/SPEC.md
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { bridgeOwner, claimBridge } from './bridge.js';
import type { Logger } from '../../log.js';
import type { Runner } from './exec.js';
import { Firewall, type InstanceFacts } from './firewall.js';
import { GatewayNamespace } from './gateway-netns.js';

export interface NetworkOptions {
  /** Bridge name (≤ 15 characters); also the CNI network name. */
  bridge: string;
  subnet: string;
  /** Where host-local keeps its leases. */
  dataDir: string;
  cniPath: string;
  /** The CARTE_HOME this network belongs to; marks the bridge as its. */
  owner: string;
  /** Where the firewall keeps the access the gateway decided (see firewall.ts). */
  accessFile: string;
  /** What an instance's record says (its service, veth, MAC), for the firewall. */
  facts(instance: string): InstanceFacts | null;
  log: Logger;
}

const NETNS_DIR = '/run/netns';

const ipToInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/**
 * How a subnet is split: instances lease from the lower 15/16 (host-local's
 * range), services get stable addresses from the top 1/16 (like Kubernetes'
 * service CIDR, but on the same bridge so instances reach them on-link: they
 * live in the gateway's namespace, see gateway-netns.ts). The host's address
 * on the bridge is the subnet's first (host-local's default gateway).
 */
export function addressPlan(subnet: string): { bridgeAddress: string; instanceRangeEnd: string; serviceAddress(index: number): string | null } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(subnet);
  if (!m || Number(m[2]) > 28) throw new Error(`subnet ${subnet}: expected an IPv4 CIDR of /28 or larger, like 10.77.0.0/16`);
  const size = 2 ** (32 - Number(m[2]));
  const base = ipToInt(m[1]!) - (ipToInt(m[1]!) % size);
  const serviceBase = base + size - size / 16;
  return {
    bridgeAddress: intToIp(base + 1),
    instanceRangeEnd: intToIp(serviceBase - 1),
    // Index 1.. up to the one before the broadcast address.
    serviceAddress: (index) => (index >= 1 && index < size / 16 - 1 ? intToIp(serviceBase + index) : null),
  };
}

export class CniNetwork {
  readonly plan: ReturnType<typeof addressPlan>;

  /** The bridge's name (CARTE_BRIDGE). */
  get bridge(): string {
    return this.opts.bridge;
  }
  /** Where the service addresses live (one namespace per bridge). */
  readonly gateway: GatewayNamespace;
  /** The host's rules for this bridge: who reaches what (firewall.ts). */
  readonly firewall: Firewall;
  /** Whether service addresses an older carte put on the host's `lo` were looked for (once per process). */
  private hostAddressesMigrated = false;

  constructor(private readonly runner: Runner, readonly opts: NetworkOptions) {
    this.plan = addressPlan(opts.subnet);
    this.gateway = new GatewayNamespace(runner, { bridge: opts.bridge, subnet: opts.subnet, bridgeAddress: this.plan.bridgeAddress, claimBridge: () => this.claimBridge() });
    this.firewall = new Firewall(runner, { bridge: opts.bridge, accessFile: opts.accessFile, leases: () => this.leases(), facts: opts.facts, log: opts.log });
  }

  /**
   * The label an older carte marked this network's service addresses with
   * on the host's loopback device (`lo:` + bridge name, at most 15
   * characters); they are removed (they would make the addresses the
   * host's, reachable by any local user).
   */
  get legacyServiceLabel(): string {
    return `lo:${this.opts.bridge.slice(0, 12)}`;
  }

  private conf(): string {
    return JSON.stringify({
      cniVersion: '1.0.0',
      name: this.opts.bridge,
      type: 'bridge',
      bridge: this.opts.bridge,
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: this.opts.subnet, rangeEnd: this.plan.instanceRangeEnd }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: this.opts.dataDir },
    });
  }

  private plugin(command: 'ADD' | 'DEL', plugin: string, instance: string, netnsPath: string, ifname: string, conf: string) {
    return this.runner.run(path.join(this.opts.cniPath, plugin), [], {
      step: `cni ${command.toLowerCase()} (${plugin}) for`,
      resource: instance,
      input: conf,
      env: { ...process.env, CNI_COMMAND: command, CNI_CONTAINERID: instance, CNI_NETNS: netnsPath, CNI_IFNAME: ifname, CNI_PATH: this.opts.cniPath },
    });
  }

  /** Creates the (empty) network namespace an instance will join. */
  async createNamespace(instance: string, netns: string): Promise<void> {
    await this.runner.run('ip', ['netns', 'add', netns], { step: 'create the network namespace of', resource: instance });
  }

  /**
   * Brings up loopback and attaches eth0 to the bridge; returns the address,
   * the host end of the veth pair and eth0's MAC (for the firewall). Safe to
   * run while the runtime creates the container in the namespace: the
   * container's process only starts afterwards.
   */
  async attach(instance: string, netnsPath: string): Promise<{ ip: string; gateway: string | null; veth: string | null; mac: string | null }> {
    const [, r] = await Promise.all([
      this.plugin('ADD', 'loopback', instance, netnsPath, 'lo', JSON.stringify({ cniVersion: '1.0.0', name: 'lo', type: 'loopback' })),
      this.plugin('ADD', 'bridge', instance, netnsPath, 'eth0', this.conf()),
    ]);
    // CNI result: interfaces are the bridge, the host's veth end, and eth0 (the one with a sandbox).
    const result = JSON.parse(r.stdout) as { ips?: Array<{ address: string; gateway?: string }>; interfaces?: Array<{ name: string; mac?: string; sandbox?: string }> };
    const first = result.ips?.[0];
    if (!first) throw new Error(`bridge plugin returned no address for ${instance}`);
    const ifs = result.interfaces ?? [];
    const veth = ifs.find((i) => !i.sandbox && i.name !== this.opts.bridge)?.name ?? null;
    const mac = ifs.find((i) => i.sandbox)?.mac?.toLowerCase() ?? null;
    return { ip: first.address.split('/')[0]!, gateway: first.gateway ?? null, veth, mac };
  }

  /**
   * Releases the address (CNI DEL) and deletes the namespace. Both are
   * idempotent; each is skipped when there is nothing to undo (the bridge
   * plugin is a Go program: running it for nothing costs ~50 ms of CPU).
   */
  async teardown(instance: string, netns: { name: string; path: string }): Promise<void> {
    const hasNetns = await fs.stat(netns.path).then(() => true, () => false);
    // DEL works without the namespace too: the address lease is released either way.
    if (hasNetns || (await this.leases()).some((l) => l.instance === instance)) {
      await this.plugin('DEL', 'bridge', instance, netns.path, 'eth0', this.conf());
    }
    if (hasNetns) await this.runner.run('ip', ['netns', 'delete', netns.name], { step: 'delete the network namespace of', resource: instance });
  }

  /** Names of the network namespaces (under /run/netns) that start with `prefix`. */
  async namespaces(prefix: string): Promise<string[]> {
    const names = await fs.readdir(NETNS_DIR).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(prefix));
  }

  /** Leased addresses and the instance each belongs to. */
  async leases(): Promise<Array<{ ip: string; instance: string }>> {
    const dir = path.join(this.opts.dataDir, this.opts.bridge);
    const out: Array<{ ip: string; instance: string }> = [];
    for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
      if (!/^[0-9.]+$|^[0-9a-f:]+$/.test(f) || f.startsWith('last_reserved')) continue;
      const owner = (await fs.readFile(path.join(dir, f), 'utf8').catch(() => '')).split(/\r?\n/)[0]!.trim();
      out.push({ ip: f, instance: owner });
    }
    return out;
  }

  /**
   * Makes exactly `ips` the service addresses, in the gateway's namespace
   * (made on first use); the first call also removes those an older carte
   * left on the host's `lo`.
   */
  async setServiceAddresses(ips: readonly string[]): Promise<string> {
    if (!this.hostAddressesMigrated) {
      await this.removeLegacyServiceAddresses();
      this.hostAddressesMigrated = true;
    }
    return this.gateway.setAddresses(ips);
  }

  /** Service addresses of this network an older carte put on the host's `lo` (see legacyServiceLabel). */
  async legacyServiceAddresses(): Promise<string[]> {
    const show = await this.runner.run('ip', ['-j', '-4', 'addr', 'show', 'dev', 'lo'], { step: 'list the service addresses on', resource: 'lo' });
    const links = JSON.parse(show.stdout || '[]') as Array<{ addr_info?: Array<{ local: string; label?: string }> }>;
    return (links[0]?.addr_info ?? []).filter((a) => a.label === this.legacyServiceLabel).map((a) => a.local);
  }

  private async removeLegacyServiceAddresses(): Promise<void> {
    for (const ip of await this.legacyServiceAddresses()) {
      await this.runner.run('ip', ['addr', 'del', `${ip}/32`, 'dev', 'lo'], { step: 'remove the old host service address', resource: ip, okCodes: [2] });
    }
  }

  /**
   * Makes sure the bridge exists and is this home's (see bridge.ts); throws
   * a DriverError when another live home owns it. Cheap when it is ours.
   */
  claimBridge(): Promise<void> {
    if (bridgeOwner(this.opts.bridge) === this.opts.owner) return Promise.resolve();
    // One claim at a time: parallel creates would otherwise race to add the bridge.
    this.claiming ??= claimBridge(this.runner, this.opts.bridge, this.opts.owner).finally(() => (this.claiming = null));
    return this.claiming;
  }

  private claiming: Promise<void> | null = null;

  /**
   * Removes the bridge, its firewall rules, the gateway's namespace and
   * veth with it, and any service addresses an older carte left on `lo`
   * (for tests), when the bridge is this home's (or nobody's); missing is
   * fine.
   */
  async removeBridge(): Promise<void> {
    const owner = bridgeOwner(this.opts.bridge);
    if (owner !== undefined && owner !== this.opts.owner && owner !== null && fsSync.existsSync(owner)) return;
    await this.firewall.remove();
    await this.gateway.remove();
    await this.runner.run('ip', ['link', 'delete', this.opts.bridge], { step: 'delete bridge', resource: this.opts.bridge, okCodes: [1] });
    await this.removeLegacyServiceAddresses();
  }
}
