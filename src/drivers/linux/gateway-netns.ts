// The gateway's network namespace: where service addresses live, so that
// instances reach them and the host's own processes do not (issue 14).
//
//   instance ──eth0══veth── bridge ──veth══eth0── carte-gw-<bridge>
//                                      │           10.77.240.1/32, .2/32, …
//                                   gw-<bridge>    route 10.77.0.0/16 dev eth0
//
// One namespace per bridge, `carte-gw-<bridge>`, joined to the bridge by a
// veth pair whose host end is `gw-<bridge>` (an alias says whose it is).
// Each service address is a /32 on the namespace's eth0; the on-link route
// for the subnet lets it answer ARP from instances and reply to them. The
// daemon stays in the host's namespace: the gateway's sockets on these
// addresses are made in here by a small child (socket-binder.ts) and passed
// to it; its connections to instances still go from the host.
//
// The host routes the subnet through the bridge, so without a filter a host
// process could reach these addresses too. The namespace's own firewall
// (iptables, in the namespace: the host's rules are not touched) accepts
// only what comes from the subnet and refuses what comes from the host's
// bridge address. br_netfilter being on does not matter here: it makes
// *bridged* frames pass the host's FORWARD chain; these rules are the
// namespace's INPUT, which every packet to a service address passes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import { findExecutable, type Runner } from './exec.js';

export interface GatewayNames {
  netns: string;
  netnsPath: string;
  /** The host end of the veth pair (≤ 15 characters); the other end is `eth0` in the namespace. */
  veth: string;
  /**
   * The MAC address of that eth0: fixed per bridge (locally administered),
   * so a namespace made again answers at the address instances have in
   * their ARP caches (else they would send to a MAC that is gone for up to
   * a minute, until their neighbour entries expire).
   */
  mac: string;
}

/** Names of a bridge's gateway namespace and veth. */
export function gatewayNames(bridge: string): GatewayNames {
  const netns = `carte-gw-${bridge}`;
  // Interface names are at most 15 characters; a long bridge name is shortened with a hash.
  const veth = bridge.length <= 12 ? `gw-${bridge}` : `gw-${bridge.slice(0, 4)}${createHash('sha256').update(bridge).digest('hex').slice(0, 8)}`;
  const mac = `02:${createHash('sha256').update(`carte-gw:${bridge}`).digest('hex').slice(0, 10).match(/../g)!.join(':')}`;
  return { netns, netnsPath: path.join('/run/netns', netns), veth, mac };
}

/**
 * The namespace's firewall (iptables-restore input, the filter table whole):
 * in from the instances' subnet only, never from the host's bridge address
 * (refused at once, so a host program sees "no route to host" rather than a
 * hang); nothing forwarded.
 */
export function gatewayFirewall(subnet: string, bridgeAddress: string): string {
  return [
    '*filter',
    ':INPUT DROP [0:0]',
    ':FORWARD DROP [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A INPUT -i lo -j ACCEPT',
    `-A INPUT -s ${bridgeAddress}/32 -j REJECT --reject-with icmp-admin-prohibited`,
    `-A INPUT -i eth0 -s ${subnet} -j ACCEPT`,
    'COMMIT',
    '',
  ].join('\n');
}

export interface GatewayNamespaceOptions {
  bridge: string;
  subnet: string;
  /** The host's address on the bridge (the instances' gateway). */
  bridgeAddress: string;
  /** Makes sure the bridge exists and is this home's. */
  claimBridge(): Promise<void>;
}

const read = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
};

/** The bridge an interface is a port of, or null. */
const masterOf = (dev: string) => {
  try {
    return path.basename(fs.readlinkSync(`/sys/class/net/${dev}/master`));
  } catch {
    return null;
  }
};

export class GatewayNamespace {
  readonly names: GatewayNames;
  /** What the last full set-up made (namespace inode, veth index): if both are still so, it need not run again. */
  private madeFor: string | null = null;
  /** The addresses last set, and in what (madeFor then). */
  private applied: { ips: string; madeFor: string } | null = null;

  constructor(private readonly runner: Runner, private readonly opts: GatewayNamespaceOptions) {
    this.names = gatewayNames(opts.bridge);
  }

  /** The namespace exists (a file under /run/netns). */
  exists(): boolean {
    return fs.existsSync(this.names.netnsPath);
  }

  /** Namespace inode and veth index, when the veth is on the bridge; null when something is missing. */
  private fingerprint(): string | null {
    const { netnsPath, veth } = this.names;
    if (!this.exists() || masterOf(veth) !== this.opts.bridge) return null;
    return `${fs.statSync(netnsPath).ino}:${read(`/sys/class/net/${veth}/ifindex`)}`;
  }

  private ip(args: string[], step: string, okCodes?: number[]) {
    return this.runner.run('ip', args, { step, resource: `gateway namespace ${this.names.netns}`, okCodes });
  }

  /**
   * Makes the namespace, veth, firewall and route, each only if missing or
   * wrong (every step is idempotent); cheap when all is as it was made.
   */
  async ensure(): Promise<void> {
    if (this.madeFor !== null && this.madeFor === this.fingerprint()) return;
    const { netns, netnsPath, veth } = this.names;
    await this.opts.claimBridge();
    await this.ip(['link', 'set', 'dev', this.opts.bridge, 'up'], 'bring up the bridge of');
    if (!this.exists()) await this.ip(['netns', 'add', netns], 'create');
    // The veth's other end must be this namespace's eth0 (not one of a namespace deleted and made again).
    const peer = read(`/sys/class/net/${veth}/iflink`);
    let paired = false;
    if (peer !== null) {
      const inside = await this.ip(['-n', netns, '-j', 'link', 'show', 'dev', 'eth0'], 'look at', [1]);
      paired = inside.code === 0 && String((JSON.parse(inside.stdout) as Array<{ ifindex: number }>)[0]?.ifindex) === peer;
      if (!paired) await this.ip(['link', 'delete', 'dev', veth], 'replace the veth of', [1]);
    }
    if (!paired) await this.ip(['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'address', this.names.mac, 'netns', netns], 'create the veth of');
    await this.ip(['link', 'set', 'dev', veth, 'master', this.opts.bridge, 'alias', `carte: gateway of ${this.opts.bridge}`, 'up'], 'attach the veth of');
    await this.ip(['-n', netns, 'link', 'set', 'dev', 'lo', 'up'], 'bring up loopback in');
    // The firewall before the first address: never a moment when the host could connect.
    await this.runner.run(findExecutable('nsenter') ?? 'nsenter', [`--net=${netnsPath}`, '--', findExecutable('iptables-restore') ?? 'iptables-restore'], {
      step: 'set the firewall of', resource: `gateway namespace ${netns}`, input: gatewayFirewall(this.opts.subnet, this.opts.bridgeAddress),
      hint: 'iptables (nf_tables) is needed: run "make setup" as root',
    });
    await this.ip(['-n', netns, 'link', 'set', 'dev', 'eth0', 'up'], 'bring up eth0 in');
    await this.ip(['-n', netns, 'route', 'replace', this.opts.subnet, 'dev', 'eth0'], 'route the subnet in');
    this.madeFor = this.fingerprint();
    if (this.madeFor === null) throw new DriverError('set up', `gateway namespace ${netns}`, `${netns} or ${veth} vanished while it was made`);
  }

  /**
   * Makes exactly `ips` the namespace's addresses (/32 each on eth0); with
   * none and no namespace yet, makes nothing. Runs nothing when the
   * namespace and veth are as made and the addresses as last set. Resolves
   * to what it is in (namespace inode and veth index; `none`).
   */
  async setAddresses(ips: readonly string[]): Promise<string> {
    if (!ips.length && !this.exists()) return 'none';
    const key = [...ips].sort().join(' ');
    const now = this.fingerprint();
    if (now !== null && this.applied?.madeFor === now && this.applied.ips === key) return now;
    this.applied = null;
    await this.ensure();
    const current = new Set(await this.addresses());
    const wanted = new Set(ips);
    for (const ip of wanted) {
      // Exit code 2 is "File exists": there already.
      if (!current.has(ip)) await this.runner.run('ip', ['-n', this.names.netns, 'addr', 'add', `${ip}/32`, 'dev', 'eth0'], { step: 'add service address', resource: ip, okCodes: [2] });
    }
    for (const ip of current) {
      if (!wanted.has(ip)) await this.runner.run('ip', ['-n', this.names.netns, 'addr', 'del', `${ip}/32`, 'dev', 'eth0'], { step: 'remove service address', resource: ip, okCodes: [2] });
    }
    this.applied = { ips: key, madeFor: this.madeFor! };
    return this.madeFor!;
  }

  /** The service addresses in the namespace now (none when it does not exist). */
  async addresses(): Promise<string[]> {
    if (!this.exists()) return [];
    const show = await this.ip(['-n', this.names.netns, '-j', '-4', 'addr', 'show', 'dev', 'eth0'], 'list the service addresses in', [1]);
    if (show.code !== 0) return [];
    const links = JSON.parse(show.stdout || '[]') as Array<{ addr_info?: Array<{ local: string }> }>;
    return (links[0]?.addr_info ?? []).map((a) => a.local);
  }

  /**
   * Removes the veth pair and the namespace; missing is fine. The veth goes
   * explicitly: sockets still open in the namespace (a daemon's) keep it
   * alive after `ip netns delete`, and the pair with it.
   */
  async remove(): Promise<void> {
    this.madeFor = null;
    this.applied = null;
    if (fs.existsSync(`/sys/class/net/${this.names.veth}`)) await this.ip(['link', 'delete', 'dev', this.names.veth], 'delete the veth of', [1]);
    if (this.exists()) await this.ip(['netns', 'delete', this.names.netns], 'delete', [1]);
  }
}
