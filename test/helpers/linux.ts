// Helpers for the root tier: a Linux driver on its own bridge, subnet,
// cgroup parent and CARTE_HOME, so tests never touch a running carte, and a
// teardown that removes everything the tests made even when they fail.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Context as MochaContext } from 'mocha';
import type { InstanceSpec, SecuritySpec } from '../../src/drivers/driver.js';
import { LinuxDriver, type LinuxDriverOptions } from '../../src/drivers/linux/driver.js';
import { gatewayNames } from '../../src/drivers/linux/gateway-netns.js';
import { cliLogger } from '../../src/log.js';
import { ROOT, tempDir } from './paths.js';

/** Skips outside root with a clear message; under CI=true, refusing to run is a failure. */
export function requireRoot(ctx: MochaContext): void {
  if (process.getuid?.() === 0) return;
  if (process.env.CI === 'true') throw new Error('the linux tests need root, and CI=true forbids skipping them: run CI as root');
  console.log('      (skipped: the linux tests need root — run "sudo make test")');
  ctx.skip();
}

export interface TestHost {
  driver: LinuxDriver;
  home: string;
  bridge: string;
  subnet: string;
  cgroupParent: string;
  teardown(): Promise<void>;
}

/** Settings of a test host: fresh random ones unless given (e.g. a second home on the same cgroup parent). */
export type TestHostOptions = Partial<Pick<LinuxDriverOptions, 'bridge' | 'subnet' | 'cgroupParent' | 'logMaxBytes' | 'previousLogLimit'>>;

export function makeTestHost(over: TestHostOptions = {}): TestHost {
  const id = randomBytes(2).toString('hex');
  const home = tempDir('carte-linux-');
  const bridge = over.bridge ?? `ct${id}`;
  // 10.200.0.0/16 is split into /24s per test host; the third octet is random.
  const subnet = over.subnet ?? `10.200.${parseInt(id, 16) % 250}.0/24`;
  const cgroupParent = over.cgroupParent ?? `/carte-test-${id}`;
  const driver = new LinuxDriver({ ...over, home, log: cliLogger(process.env.CARTE_TEST_DEBUG ? 'debug' : 'error'), bridge, subnet, cgroupParent });
  return {
    driver, home, bridge, subnet, cgroupParent,
    async teardown() {
      await driver.gc({ keep: new Set() }).catch(() => {});
      await driver.network.removeBridge().catch(() => {});
      removeCgroupParent(cgroupParent, driver.paths.homeId);
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(driver.runRoot, { recursive: true, force: true });
    },
  };
}

/** Removes a test's cgroup parent and its home's folder in it (`<parent>/<homeId>`), in every hierarchy. */
export function removeCgroupParent(cgroupParent: string, homeId: string): void {
  for (const c of fs.readdirSync('/sys/fs/cgroup')) {
    for (const dir of [path.join('/sys/fs/cgroup', c, cgroupParent, homeId), path.join('/sys/fs/cgroup', c, cgroupParent)]) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // absent, not a hierarchy, or (the parent) still holding another home's folder
      }
    }
  }
}

/**
 * Everything a test host's instances could leave on the machine (previous
 * logs are kept on purpose, so not counted), firewall rules naming them included. The gateway's namespace and veth
 * are the bridge's, not an instance's: see bridgeTraces.
 */
export function traces(host: TestHost) {
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const cgroupDir = `/sys/fs/cgroup/memory${host.cgroupParent}/${host.driver.paths.homeId}`;
  const runc = JSON.parse(execFileSync(host.driver.runtime.path, ['--root', host.driver.runtime.root, 'list', '--format', 'json']).toString() || 'null') as unknown[] | null;
  const leaseDir = path.join(host.home, 'cni', host.bridge);
  const gatewayVeth = gatewayNames(host.bridge).veth;
  const bridgeIfs = fs.existsSync(`/sys/class/net/${host.bridge}/brif`) ? fs.readdirSync(`/sys/class/net/${host.bridge}/brif`).filter((i) => i !== gatewayVeth) : [];
  return {
    mounts: mountinfo.split('\n').filter((l) => l.includes(host.home)).length,
    netns: fs.readdirSync('/run/netns').filter((n) => n.startsWith(`carte-${host.driver.paths.homeId}-`) || n.startsWith(`${host.bridge}-`)),
    veths: bridgeIfs,
    cgroups: fs.existsSync(cgroupDir) ? fs.readdirSync(cgroupDir).filter((f) => fs.statSync(path.join(cgroupDir, f)).isDirectory()) : [],
    runc: runc ?? [],
    leases: fs.existsSync(leaseDir) ? fs.readdirSync(leaseDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [],
    instances: fs.readdirSync(path.join(host.home, 'instances')),
    runFolders: fs.readdirSync(host.driver.runRoot).filter((f) => f !== 'runc'),
    firewall: firewallRules(host).filter((l) => / -i veth/.test(l) || instanceAddresses(l, host).length > 0),
  };
}

export const CLEAN = { mounts: 0, netns: [], veths: [], cgroups: [], runc: [], leases: [], instances: [], runFolders: [], firewall: [] };

/** Every rule line (iptables filter, ebtables nat) that is in one of a bridge's chains or jumps to one. */
export function firewallRules(host: Pick<TestHost, 'bridge'>): string[] {
  const own = new RegExp(`CARTE-${host.bridge}-(IN|OUT|FWD|S\\d+|L2)\\b`);
  const save = (cmd: string, table: string) => execFileSync(cmd, ['-t', table]).toString().split('\n').filter((l) => own.test(l));
  return [...save('iptables-save', 'filter'), ...save('ebtables-save', 'nat')];
}

/** The instances' addresses (not service addresses, nor the host's) a rule line names. */
function instanceAddresses(line: string, host: TestHost): string[] {
  const n = (ip: string) => ip.split('.').reduce((s, o) => s * 256 + Number(o), 0);
  const { bridgeAddress, instanceRangeEnd } = host.driver.network.plan;
  return [...line.matchAll(/(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).filter((ip) => n(ip) > n(bridgeAddress) && n(ip) <= n(instanceRangeEnd));
}

/**
 * What a test host's bridge brings with it: the bridge, the gateway's
 * namespace and veth, the binder processes running in that namespace,
 * service addresses on the host's `lo` (where an older carte put them), and
 * the bridge's firewall chains and the jumps to them.
 */
export function bridgeTraces(host: Pick<TestHost, 'bridge' | 'driver'>) {
  const { netns, netnsPath, veth } = gatewayNames(host.bridge);
  const nsInode = fs.existsSync(netnsPath) ? fs.statSync(netnsPath).ino : null;
  const inNamespace = nsInode === null ? [] : fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return fs.statSync(`/proc/${p}/ns/net`).ino === nsInode;
    } catch {
      return false; // gone meanwhile
    }
  });
  const label = host.driver.network.legacyServiceLabel;
  const lo = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', 'lo']).toString()) as Array<{ addr_info: Array<{ local: string; label?: string }> }>;
  return {
    bridge: fs.existsSync(`/sys/class/net/${host.bridge}`),
    gatewayNetns: fs.readdirSync('/run/netns').filter((n) => n === netns),
    gatewayVeth: fs.existsSync(`/sys/class/net/${veth}`),
    processesInNetns: inNamespace.length,
    loAddresses: lo[0]!.addr_info.filter((a) => a.label === label).map((a) => a.local),
    firewall: firewallRules(host),
  };
}

export const BRIDGE_GONE = { bridge: false, gatewayNetns: [], gatewayVeth: false, processesInNetns: 0, loAddresses: [], firewall: [] };

export const BUSYBOX_CARTEFILE = `FROM scratch
COPY --from=host /bin/busybox /bin/busybox
COPY --from=host /bin/busybox /bin/sh
CMD ["/bin/sh"]
`;

/**
 * Declares a suite's test host: root is required, the host is made before
 * the suite (with test/busybox:1 built unless told otherwise) and torn down
 * after it, failed or not. Returns a getter for the host.
 */
export function useTestHost(opts: { busybox?: boolean } & TestHostOptions = {}): () => TestHost {
  let host: TestHost | undefined;
  before(async function () {
    requireRoot(this);
    const { busybox: _, ...over } = opts;
    host = makeTestHost(over);
    if (opts.busybox !== false) await buildImage(host, 'test/busybox:1', BUSYBOX_CARTEFILE);
  });
  after(async () => host?.teardown());
  return () => host!;
}

/** Builds test/busybox:1 (and any Cartefile given) in a temp context. */
export async function buildImage(host: TestHost, tag: string, cartefile: string, files: Record<string, string> = {}): Promise<void> {
  const ctx = tempDir('carte-ctx-');
  try {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), cartefile);
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(ctx, rel)), { recursive: true });
      fs.writeFileSync(path.join(ctx, rel), text);
    }
    await host.driver.builder.build({ context: ctx, tag });
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

/**
 * Builds `tag`: test/busybox:1 plus /bin/probe, test/linux/fixtures/syscall-probe.c
 * compiled statically (it makes the syscalls it is told and prints each errno).
 */
export async function buildProbeImage(host: TestHost, tag: string): Promise<void> {
  const dir = tempDir('carte-probe-');
  try {
    // Built into the context (a host copy from a temp folder is refused by the build policy).
    execFileSync('gcc', ['-static', '-O1', '-o', path.join(dir, 'probe'), path.join(ROOT, 'test', 'linux', 'fixtures', 'syscall-probe.c')]);
    fs.writeFileSync(path.join(dir, 'Cartefile'), BUSYBOX_CARTEFILE.replace('CMD', 'COPY probe /bin/probe\nCMD'));
    await host.driver.builder.build({ context: dir, tag });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Tags `tag`: test/busybox:1 with one more layer, whose files `make` creates
 * in a folder. As root, so it can hold what no Cartefile makes (FIFOs,
 * device nodes, links anywhere), as a hostile image could.
 */
export async function imageFromTree(host: TestHost, tag: string, make: (dir: string) => void): Promise<void> {
  const images = host.driver.images;
  const base = await images.get('test/busybox:1');
  const staged = await images.stagingDir();
  // The layer digest ignores FIFOs and devices: a marker keeps each test's layer its own.
  fs.writeFileSync(path.join(staged, '.test-image'), tag);
  make(staged);
  const layer = await images.addLayer(staged);
  await images.save(base.config, [...base.layers, layer.digest], tag);
}

/** An InstanceSpec with plain defaults; a test states only what differs. */
export function instance(
  name: string, over: Partial<InstanceSpec['spec']> & { image?: string; hosts?: Record<string, string>; security?: SecuritySpec; source?: string } = {},
): InstanceSpec {
  const { image, hosts, security, source, ...spec } = over;
  return {
    name, service: name.replace(/-\d+$/, ''), source: source ?? 'cli', labels: { test: 'yes' }, image: image ?? 'test/busybox:1', hosts, ...(security ? { security } : {}),
    spec: {
      command: null, args: null, env: {}, workingDir: null, user: null,
      resources: { cpuMillis: null, memoryBytes: null, pids: null }, volumes: [], ports: [], ...spec,
    },
  };
}

/** Waits until `check` returns a value (not undefined/false), polling; fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function logText(host: TestHost, name: string): Promise<string> {
  const lines: string[] = [];
  for await (const l of host.driver.logs(name)) lines.push(`${l.stream}: ${l.text}`);
  return lines.join('\n');
}

/** Output of a command run inside an instance. */
export async function execOut(host: TestHost, name: string, command: string[]): Promise<{ code: number; out: string }> {
  const { PassThrough } = await import('node:stream');
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const code = await host.driver.exec(name, command, { stdout: out, stderr: out });
  return { code, out: text };
}

/** A peer "out in the world": a network namespace routed through the host, with a TCP server that answers `peer`. */
export interface PeerNamespace {
  netns: string;
  veth: string;
  hostIp: string;
  ip: string;
  port: number;
}

/**
 * Declares a suite's peer namespace (made before the suite, removed after it,
 * failed or not): `tag` keeps two suites' names and its /30 apart.
 */
export function usePeerNamespace(tag: string, octet: number, port: number): PeerNamespace {
  const id = (process.pid + octet) % 250;
  const peer: PeerNamespace = { netns: `carte-test-${tag}-${process.pid}`, veth: `ct${tag}${process.pid % 100000}`, hostIp: `10.${octet}.${id}.1`, ip: `10.${octet}.${id}.2`, port };
  let server: ChildProcess | undefined;
  before(() => {
    execFileSync('ip', ['netns', 'add', peer.netns]);
    execFileSync('ip', ['link', 'add', peer.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer.netns]);
    execFileSync('ip', ['addr', 'add', `${peer.hostIp}/30`, 'dev', peer.veth]);
    execFileSync('ip', ['link', 'set', 'dev', peer.veth, 'up']);
    for (const args of [['link', 'set', 'dev', 'lo', 'up'], ['link', 'set', 'dev', 'eth0', 'up'], ['addr', 'add', `${peer.ip}/30`, 'dev', 'eth0'], ['route', 'add', 'default', 'via', peer.hostIp]]) {
      execFileSync('ip', ['-n', peer.netns, ...args]);
    }
    server = spawn('ip', ['netns', 'exec', peer.netns, process.execPath, '-e', `require('net').createServer((s) => s.end('peer\\n')).listen(${peer.port}, () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    return new Promise<void>((resolve) => server!.stdout!.once('data', () => resolve()));
  });
  after(() => {
    if (server?.exitCode === null) server.kill('SIGKILL');
    try {
      execFileSync('ip', ['netns', 'delete', peer.netns]);
    } catch {
      // not made
    }
    // Deleting the namespace takes the veth pair with it, but not always at once: gone meanwhile is fine.
    try {
      if (fs.existsSync(`/sys/class/net/${peer.veth}`)) execFileSync('ip', ['link', 'delete', 'dev', peer.veth], { stdio: 'ignore' });
    } catch {
      if (fs.existsSync(`/sys/class/net/${peer.veth}`)) throw new Error(`${peer.veth} is left`);
    }
  });
  return peer;
}
