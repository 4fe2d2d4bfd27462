// The host's firewall for a bridge (issue 14): instances reach the host only
// on published ports and the policy's host ports; non-root host processes do
// not reach instances; an instance sends only as itself; allowFrom holds on
// service addresses and instance addresses; egress and instance traffic work
// under a FORWARD policy of DROP; the rules are made again, once, by a
// restarted daemon and are gone with the bridge. Real containers; traffic
// only to the test host's bridge and to a namespace this test makes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { applyServices } from '../../src/api/apply.js';
import { serviceStatuses } from '../../src/api/status.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { LinuxDriver } from '../../src/drivers/linux/driver.js';
import { chainNames, jumpRules } from '../../src/drivers/linux/firewall.js';
import { cliLogger } from '../../src/log.js';
import { parsePolicy } from '../../src/policy/load.js';
import { LivePolicy } from '../../src/policy/live.js';
import { Store } from '../../src/store/store.js';
import { BRIDGE_GONE, bridgeTraces, buildImage, CLEAN, eventually, execOut, firewallRules, traces, usePeerNamespace, useTestHost } from '../helpers/linux.js';
import { services } from '../helpers/manifests.js';
import { fixture } from '../helpers/paths.js';
import { carte } from '../helpers/cli.js';
import { run } from '../helpers/process.js';

const BASE = 21000 + Math.floor(Math.random() * 20000);
const PORT = { redis: BASE, login: BASE + 2, game: BASE + 4, published: BASE + 6 };
const log = cliLogger(process.env.CARTE_TEST_DEBUG ? 'debug' : 'silent');

/**
 * A TCP client in node: connects (from `local`, if given), sends an HTTP
 * request, prints what happened as JSON: `answer <last line>`, an error
 * code, `closed` (no answer) or `timeout` (3 s), and how long it took.
 */
const CLIENT = `const [host, port, local] = process.argv.slice(1);
const started = Date.now();
const done = (r) => { console.log(JSON.stringify({ r, ms: Date.now() - started })); process.exit(0); };
const s = require('net').connect({ host, port: Number(port), localAddress: local || undefined });
let data = '';
s.setTimeout(3000, () => done('timeout'));
s.on('connect', () => s.end('GET / HTTP/1.0\\r\\n\\r\\n'));
s.on('data', (d) => (data += d));
s.on('end', () => done(data ? 'answer ' + data.trim().split('\\n').at(-1) : 'closed'));
s.on('error', (e) => done(e.code));`;

interface Outcome { r: string; ms: number }

/** A UDP client in node: sends `ping` (broadcast allowed) to host:port, prints the answers of the next 1.5 s as JSON. */
const UDP_CLIENT = `const [host, port] = process.argv.slice(1);
const s = require('dgram').createSocket('udp4');
const got = [];
s.on('message', (m) => got.push(String(m)));
s.bind(0, () => { s.setBroadcast(true); s.send('ping', Number(port), host, (e) => e && got.push(e.code)); });
setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 1500);`;

/** What a connection from inside an instance to host:port comes to. */
async function from(host: () => { driver: LinuxDriver }, instance: string, address: string, port: number): Promise<Outcome> {
  const r = await execOut(host() as Parameters<typeof execOut>[0], instance, ['/usr/bin/node', '-e', CLIENT, address, String(port)]);
  return JSON.parse(r.out.trim().split('\n').at(-1)!) as Outcome;
}

/**
 * The same from a host process: as root, or as nobody, or inside a network
 * namespace (by name). Asynchronous: the host programs it may connect to
 * live in this process.
 */
async function fromHost(address: string, port: number, opts: { nobody?: boolean; netns?: string; local?: string } = {}): Promise<Outcome> {
  const node = [process.execPath, '-e', CLIENT, address, String(port), opts.local ?? ''];
  const cmd = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...node] : opts.nobody ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...node] : node;
  const { stdout } = await run('timeout', ['10', ...cmd], { cwd: '/' });
  return JSON.parse(stdout.trim()) as Outcome;
}

const hello = (name: string, port: number, opts: { publish?: string; allowFrom?: string[] } = {}) => `apiVersion: carte/v1
kind: Service
metadata: { name: ${name} }
spec:
  image: test/hello:1
  env: { PORT: "${port}", UDP_PORT: "${port + 1}" }
  ports: [{ port: ${port}${opts.publish ? `, publish: ${opts.publish}` : ''} }]
  health: { http: { path: /health, port: ${port} }, interval: 1s }
  stopGracePeriod: 1s
${opts.allowFrom ? `  allowFrom: [${opts.allowFrom.join(', ')}]\n` : ''}`;

/** Deletes a rule given as iptables-save prints it (`-A CHAIN …`, quoted comments kept whole). */
function deleteRule(line: string): void {
  execFileSync('iptables', line.replace(/^-A /, '-D ').match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"(.*)"$/, '$1')));
}

/** The FORWARD policy now (ACCEPT or DROP). */
const forwardPolicy = () => /^-P FORWARD (\w+)$/m.exec(execFileSync('iptables', ['-S', 'FORWARD']).toString())![1]!;

describe('host firewall (root, real containers)', function () {
  this.timeout(180_000);
  let daemon: RunningDaemon | undefined;
  let store: Store;
  const listeners: net.Server[] = [];
  const hostPorts = { closed: 0, allowed: 0 };
  const savedForward = { policy: '' };
  after(async () => {
    // Whatever happened: the FORWARD policy as it was, the daemon stopped before the host's teardown.
    if (savedForward.policy && forwardPolicy() !== savedForward.policy) execFileSync('iptables', ['-P', 'FORWARD', savedForward.policy]);
    await daemon?.stop();
    for (const l of listeners) l.close();
  });
  const host = useTestHost();
  const bridgeAddress = () => host().driver.network.plan.bridgeAddress;
  const ipOf = async (name: string) => (await host().driver.observe(name))!.ip!;
  const addressOf = async (service: string) => host().driver.serviceAddress((await store.read()).serviceIndex![service]!)!;

  async function converged(service: string): Promise<void> {
    await eventually(async () => {
      const s = serviceStatuses(await store.read(), Date.now()).find((x) => x.name === service);
      return s?.phase === 'Converged' && s.ready === 1;
    }, 60_000, `${service} converged`);
  }

  /** A host program on 0.0.0.0 that greets whoever connects. */
  async function hostListener(): Promise<number> {
    const server = net.createServer((s) => s.end('host program\n'));
    listeners.push(server);
    await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
    return (server.address() as net.AddressInfo).port;
  }

  const policyWith = (port: number) => LivePolicy.fixed(parsePolicy(`network:\n  hostPorts: [{ port: ${port} }]\n`, 'policy.yaml').policy!);

  before(async () => {
    savedForward.policy = forwardPolicy();
    await buildImage(host(), 'test/hello:1', fs.readFileSync(fixture('hello', 'Cartefile'), 'utf8'), { 'server.js': fs.readFileSync(fixture('hello', 'server.js'), 'utf8') });
    hostPorts.closed = await hostListener();
    hostPorts.allowed = await hostListener();
    store = Store.open(host().home);
    daemon = await startDaemon({ home: host().home, log, driver: host().driver, watch: [], git: [], publishAddress: '127.0.0.1', gateway: { retryBindMs: 300 }, policy: policyWith(hostPorts.allowed) });
    // Published on the host's own address on the bridge: the one host address an instance can reach.
    const manifests = [
      hello('redis', PORT.redis, { allowFrom: ['login'] }),
      hello('login', PORT.login, { publish: `{ port: ${PORT.published}, address: ${bridgeAddress()} }` }),
      hello('game', PORT.game),
    ].join('---\n');
    await applyServices(store, { services: services({ 'm.yaml': manifests }), source: 'cli', prune: true });
    daemon.reconciler.trigger();
    for (const s of ['redis', 'login', 'game']) await converged(s);
    await eventually(async () => daemon!.gateway.listening().includes(`tcp ${bridgeAddress()}:${PORT.published}`), 15_000, 'the published listener');
  });

  describe('host protection', () => {
    it('lets an instance reach a published port and the policy\'s host ports on the host, and nothing else there', async () => {
      assert.equal((await from(host, 'game-1', bridgeAddress(), PORT.published)).r, 'answer login-1');
      assert.equal((await from(host, 'game-1', bridgeAddress(), hostPorts.allowed)).r, 'answer host program');
      // A host program on 0.0.0.0 that nothing publishes: refused at once (not a hang).
      const refused = await from(host, 'game-1', bridgeAddress(), hostPorts.closed);
      assert.equal(refused.r, 'EHOSTUNREACH');
      assert.ok(refused.ms < 1500, `refused in ${refused.ms} ms`);
      // The host itself reaches it, and the published port, root or not.
      assert.equal((await fromHost(bridgeAddress(), hostPorts.closed)).r, 'answer host program');
      assert.equal((await fromHost(bridgeAddress(), PORT.published, { nobody: true })).r, 'answer login-1');
    });

    it('keeps host processes that are not root away from instances\' own addresses; root reaches them', async () => {
      const ip = await ipOf('game-1');
      assert.equal((await fromHost(ip, PORT.game, { nobody: true })).r, 'EHOSTUNREACH');
      assert.equal((await fromHost(ip, PORT.game)).r, 'answer game-1');
    });
  });

  describe('anti-spoofing', () => {
    const spoofed = () => host().driver.network.plan.instanceRangeEnd;

    it('drops what an instance sends from another address, to other instances and to the host', async () => {
      const { netns } = host().driver.placement('game-1');
      const login = await ipOf('login-1');
      execFileSync('ip', ['-n', netns, 'addr', 'add', `${spoofed()}/32`, 'dev', 'eth0']);
      try {
        assert.equal((await fromHost(login, PORT.login, { netns, local: spoofed() })).r, 'timeout');
        assert.equal((await fromHost(bridgeAddress(), PORT.published, { netns, local: spoofed() })).r, 'timeout');
        // Its own address still works.
        assert.equal((await fromHost(login, PORT.login, { netns, local: await ipOf('game-1') })).r, 'answer login-1');
      } finally {
        execFileSync('ip', ['-n', netns, 'addr', 'del', `${spoofed()}/32`, 'dev', 'eth0']);
      }
    });

    it('drops what an instance sends with another MAC', async () => {
      const { netns } = host().driver.placement('game-1');
      const link = JSON.parse(execFileSync('ip', ['-n', netns, '-j', 'link', 'show', 'dev', 'eth0']).toString()) as Array<{ address: string }>;
      const mac = link[0]!.address;
      execFileSync('ip', ['-n', netns, 'link', 'set', 'dev', 'eth0', 'address', '02:00:00:00:66:66']);
      try {
        assert.equal((await fromHost(await ipOf('login-1'), PORT.login, { netns })).r, 'timeout');
      } finally {
        execFileSync('ip', ['-n', netns, 'link', 'set', 'dev', 'eth0', 'address', mac]);
      }
      assert.equal((await from(host, 'game-1', await ipOf('login-1'), PORT.login)).r, 'answer login-1');
    });
  });

  describe('allowFrom', () => {
    it('lets login reach redis by name and by instance address, and refuses game both ways at once', async () => {
      const redisIp = await ipOf('redis-1');
      assert.equal((await from(host, 'login-1', 'redis', PORT.redis)).r, 'answer redis-1');
      assert.equal((await from(host, 'login-1', redisIp, PORT.redis)).r, 'answer redis-1');
      for (const to of ['redis', redisIp]) {
        const refused = await from(host, 'game-1', to, PORT.redis);
        assert.equal(refused.r, 'ECONNREFUSED', `game-1 → ${to}`);
        assert.ok(refused.ms < 1500, `refused in ${refused.ms} ms`);
      }
      // A service reaches itself; services with no allowFrom take every service of their source.
      assert.equal((await from(host, 'redis-1', 'redis', PORT.redis)).r, 'answer redis-1');
      assert.equal((await from(host, 'game-1', 'login', PORT.login)).r, 'answer login-1');
      assert.equal((await from(host, 'redis-1', 'game', PORT.game)).r, 'answer game-1');
    });

    it('is the gateway\'s to enforce too: with the firewall\'s rule for the service address gone, game is reset by the gateway', async () => {
      const address = await addressOf('redis');
      const rule = firewallRules(host()).find((l) => l.includes(`-d ${address}/32`));
      assert.ok(rule, 'a rule for redis\'s service address');
      deleteRule(rule!);
      try {
        assert.ok(!firewallRules(host()).some((l) => l.includes(`-d ${address}/32`)));
        const reset = await from(host, 'game-1', 'redis', PORT.redis);
        assert.ok(['ECONNRESET', 'closed'].includes(reset.r), reset.r);
        assert.equal((await from(host, 'login-1', 'redis', PORT.redis)).r, 'answer redis-1');
      } finally {
        await host().driver.network.firewall.sync();
      }
      assert.equal((await from(host, 'game-1', 'redis', PORT.redis)).r, 'ECONNREFUSED');
    });

    it('holds for broadcast and multicast too: none leaves an instance, unicast from an allowed service still does', async () => {
      const broadcast = (subnet: string) => {
        const [net, bits] = subnet.split('/');
        const n = net!.split('.').reduce((s, o) => s * 256 + Number(o), 0) + 2 ** (32 - Number(bits)) - 1;
        return [24, 16, 8, 0].map((b) => Math.floor(n / 2 ** b) % 256).join('.');
      };
      const udp = async (instance: string, to: string) => {
        const r = await execOut(host() as Parameters<typeof execOut>[0], instance, ['/usr/bin/node', '-e', UDP_CLIENT, to, String(PORT.redis + 1)]);
        return JSON.parse(r.out.trim().split('\n').at(-1)!) as string[];
      };
      assert.deepEqual(await udp('login-1', await ipOf('redis-1')), ['redis-1 ping'], 'control: unicast from login');
      for (const to of [broadcast(host().subnet), '255.255.255.255', '224.0.0.1']) {
        assert.deepEqual(await udp('game-1', to), [], `game-1 → ${to}`);
        assert.deepEqual(await udp('login-1', to), [], `login-1 → ${to}`);
      }
    });

    it('carte describe says who may connect', async () => {
      const describe = async (s: string) => (await carte(host().home, ['describe', s])).stdout.split('\n').find((l) => l.startsWith('Allowed from:'));
      assert.equal(await describe('redis'), 'Allowed from: login');
      assert.equal(await describe('game'), 'Allowed from: every service of source cli');
    });
  });

  describe('under a FORWARD policy of DROP (as Docker sets it)', () => {
    const peer = usePeerNamespace('peer', 251, BASE + 8);

    it('keeps egress (to a namespace routed through the host), instance to instance and instance to service address working', async () => {
      assert.equal((await from(host, 'game-1', peer.ip, peer.port)).r, 'answer peer', 'egress with the policy at ACCEPT');
      execFileSync('iptables', ['-P', 'FORWARD', 'DROP']);
      try {
        assert.equal((await from(host, 'game-1', peer.ip, peer.port)).r, 'answer peer');
        assert.equal((await from(host, 'game-1', await ipOf('login-1'), PORT.login)).r, 'answer login-1');
        assert.equal((await from(host, 'game-1', 'login', PORT.login)).r, 'answer login-1');
        assert.equal((await from(host, 'login-1', 'redis', PORT.redis)).r, 'answer redis-1');
        // Control: it is carte's rules that let it through.
        for (const j of jumpRules(host().bridge).ip.filter((l) => l.startsWith('-A FORWARD'))) deleteRule(j);
        assert.equal((await from(host, 'game-1', peer.ip, peer.port)).r, 'timeout');
        await host().driver.network.firewall.sync();
        assert.equal((await from(host, 'game-1', peer.ip, peer.port)).r, 'answer peer');
      } finally {
        execFileSync('iptables', ['-P', 'FORWARD', savedForward.policy]);
      }
      assert.equal(forwardPolicy(), savedForward.policy);
    });
  });

  describe('lifetime of the rules', () => {
    /** This bridge's rules, in order, as the tables list them. */
    const rules = () => firewallRules(host());

    it('a restarted daemon makes missing rules again, once: nothing is duplicated', async () => {
      const before = rules();
      assert.equal(before.filter((l) => jumpRules(host().bridge).ip.includes(l)).length, 4);
      await daemon!.stop();
      // An admin (or a reboot of the firewall) took one jump and one chain's rules away.
      execFileSync('iptables', ['-F', chainNames(host().bridge).output]);
      deleteRule(jumpRules(host().bridge).ip[0]!);
      assert.notDeepEqual(rules(), before);
      // A new process: a driver of its own, as after `systemctl restart`.
      const driver = new LinuxDriver({ home: host().home, log, bridge: host().bridge, subnet: host().subnet, cgroupParent: host().cgroupParent });
      daemon = await startDaemon({ home: host().home, log, driver, watch: [], git: [], publishAddress: '127.0.0.1', gateway: { retryBindMs: 300 }, policy: policyWith(hostPorts.allowed) });
      await eventually(async () => JSON.stringify(rules()) === JSON.stringify(before), 15_000, 'the rules as they were');
      // And once more: still the same, nothing added twice.
      await daemon.stop();
      daemon = await startDaemon({ home: host().home, log, driver: new LinuxDriver({ home: host().home, log, bridge: host().bridge, subnet: host().subnet, cgroupParent: host().cgroupParent }), watch: [], git: [], publishAddress: '127.0.0.1', gateway: { retryBindMs: 300 }, policy: policyWith(hostPorts.allowed) });
      await converged('game');
      assert.deepEqual(rules(), before);
      assert.equal((await from(host, 'game-1', 'redis', PORT.redis)).r, 'ECONNREFUSED');
    });

    it('removing instances removes their rules; removing the bridge removes every chain and jump', async () => {
      await daemon!.stop();
      daemon = undefined;
      assert.ok(traces(host()).firewall.length > 0);
      await host().driver.gc({ keep: new Set() });
      assert.deepEqual(traces(host()), CLEAN);
      await host().driver.network.removeBridge();
      await host().driver.serviceSockets.close();
      assert.deepEqual(bridgeTraces(host()), BRIDGE_GONE);
    });
  });
});
