// The gateway's network namespace (issue 14): service addresses are reached
// by containers and by nothing on the host, and a host program's 0.0.0.0:P
// no longer keeps carte from serving `<service>:P`. The daemon runs
// in-process on the test host's bridge; traffic goes only to 127.0.0.1 and
// to addresses on that bridge.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { applyServices } from '../../src/api/apply.js';
import { serviceStatuses } from '../../src/api/status.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { Runner } from '../../src/drivers/linux/exec.js';
import { gatewayFirewall, gatewayNames } from '../../src/drivers/linux/gateway-netns.js';
import { SocketBinder } from '../../src/drivers/linux/socket-binder.js';
import { cliLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { BRIDGE_GONE, bridgeTraces, buildImage, CLEAN, eventually, execOut, requireRoot, traces, useTestHost } from '../helpers/linux.js';
import { services } from '../helpers/manifests.js';
import { fixture } from '../helpers/paths.js';

const BASE = 21000 + Math.floor(Math.random() * 20000);
const PORT = { tcp: BASE, udp: BASE + 1, published: BASE + 2, late: BASE + 3, sleepy: BASE + 5 };

/** A port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '0.0.0.0', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** How a TCP connect to address:port from the host ends, as root: 'connected', an error code, or 'timeout' (2 s). */
function connectFromHost(address: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port });
    s.setTimeout(2000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** The same, as the unprivileged user nobody (a separate process, bounded by timeout). */
function connectAsNobody(address: string, port: number): string {
  const script = `const s = require('net').connect({ host: ${JSON.stringify(address)}, port: ${port} });
s.setTimeout(2000, () => { console.log('timeout'); process.exit(0); });
s.on('connect', () => { console.log('connected'); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
  return execFileSync('timeout', ['10', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', script], { cwd: '/', encoding: 'utf8' }).trim();
}

/** Whether a datagram to address:port from the host gets any answer within 1 s. */
function udpAnswered(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve(false);
    }, 1000);
    s.on('message', () => {
      clearTimeout(timer);
      s.close();
      resolve(true);
    });
    s.on('error', () => undefined); // an ICMP error is no answer either
    s.send('ping', port, address);
  });
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

const hello = (name: string, tcp: number, udp: number, publish?: number) => `apiVersion: carte/v1
kind: Service
metadata: { name: ${name} }
spec:
  image: test/hello:1
  env: { PORT: "${tcp}", UDP_PORT: "${udp}" }
  ports: [{ port: ${tcp}${publish ? `, publish: ${publish}` : ''} }, { port: ${udp}, protocol: udp }]
  health: { http: { path: /health, port: ${tcp} }, interval: 1s }
  stopGracePeriod: 2s
`;

describe('gateway namespace (root, real containers)', function () {
  this.timeout(120_000);
  let daemon: RunningDaemon | undefined;
  let store: Store;
  /** A host program on 0.0.0.0:P, the port the service `svc` serves by name. */
  let blocker: net.Server | undefined;
  let blocked = 0;
  after(async () => {
    await daemon?.stop(); // before the host's teardown (hooks run in order)
    await new Promise((r) => (blocker ? blocker.close(r) : r(undefined)));
  });
  const host = useTestHost();
  const manifests: Record<string, string> = {};

  async function apply(name: string, text: string): Promise<void> {
    manifests[name] = text;
    await applyServices(store, { services: services({ 'm.yaml': Object.values(manifests).join('---\n') }), source: 'cli', prune: true });
    daemon!.reconciler.trigger();
  }

  async function converged(service: string, ready: number): Promise<void> {
    await eventually(async () => {
      const s = serviceStatuses(await store.read(), Date.now()).find((x) => x.name === service);
      return s?.phase === 'Converged' && s.ready === ready;
    }, 60_000, `${service} converged with ${ready} ready`);
  }

  /** What `client-1` gets from `<name>:<port>` over TCP (the last line: the answering instance). */
  async function askByName(name: string, port: number): Promise<string> {
    const r = await execOut(host(), 'client-1', ['sh', '-c', `printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox timeout 10 busybox nc ${name} ${port}`]);
    return r.out.trim().split('\n').at(-1) ?? '';
  }

  const addressOf = async (service: string) => {
    const index = (await store.read()).serviceIndex?.[service];
    const a = index === undefined ? null : host().driver.serviceAddress(index);
    assert.ok(a, `${service} has a service address`);
    return a;
  };

  before(async () => {
    await buildImage(host(), 'test/hello:1', fs.readFileSync(fixture('hello', 'Cartefile'), 'utf8'), { 'server.js': fs.readFileSync(fixture('hello', 'server.js'), 'utf8') });
    // An older carte put service addresses on the host's lo: the daemon takes them off at start.
    for (const i of [1, 2, 3]) execFileSync('ip', ['addr', 'add', `${host().driver.serviceAddress(i)}/32`, 'dev', 'lo', 'label', host().driver.network.legacyServiceLabel]);
    blocked = await freePort();
    blocker = net.createServer((s) => s.end('host program\n'));
    await new Promise<void>((r) => blocker!.listen(blocked, '0.0.0.0', r));
    store = Store.open(host().home);
    daemon = await startDaemon({ home: host().home, log: cliLogger(process.env.CARTE_TEST_DEBUG ? 'debug' : 'silent'), driver: host().driver, watch: [], git: [], publishAddress: '127.0.0.1', gateway: { retryBindMs: 300 } });
    await apply('svc', hello('svc', blocked, PORT.udp, PORT.published));
    await apply('client', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: client }\nspec:\n  image: test/busybox:1\n  command: [sh, -c, "exec busybox sleep 100000"]\n');
    await converged('svc', 1);
    await converged('client', 1);
  });

  it('lets a container reach a service by name on a port a host program holds on 0.0.0.0, over TCP and UDP', async () => {
    assert.equal(await askByName('svc', blocked), 'svc-1');
    // busybox's nc has no UDP: node, in the service's own instance (to its own service address, through the gateway).
    const udp = await execOut(host(), 'svc-1', ['/usr/bin/node', '-e', `const s = require('dgram').createSocket('udp4');
s.on('message', (m) => { console.log(String(m)); process.exit(0); });
setTimeout(() => { console.log('no answer'); process.exit(1); }, 5000);
s.send('ping', ${PORT.udp}, 'svc');`]);
    assert.equal(udp.out.trim(), 'svc-1 ping', udp.out);
    assert.ok(daemon!.gateway.listening().includes(`tcp ${await addressOf('svc')}:${blocked}`), daemon!.gateway.listening().join(', '));
    assert.deepEqual((await store.read()).portErrors, {});
    // The host program still has its port.
    assert.equal(await new Promise((r) => net.connect(blocked, '127.0.0.1').on('data', (d) => r(d.toString())).on('error', r)), 'host program\n');
  });

  it('keeps service addresses off the host: neither an unprivileged user nor root there reaches them', async () => {
    const address = await addressOf('svc');
    const hostAddresses = (JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show']).toString()) as Array<{ addr_info: Array<{ local: string }> }>).flatMap((l) => l.addr_info.map((a) => a.local));
    assert.ok(!hostAddresses.includes(address), `${address} is not an address of the host`);
    assert.deepEqual(bridgeTraces(host()).loAddresses, [], 'what an older carte left on lo is gone');
    assert.equal(connectAsNobody(address, blocked), 'EHOSTUNREACH');
    assert.equal(await connectFromHost(address, blocked), 'EHOSTUNREACH');
    assert.equal(await udpAnswered(address, PORT.udp), false);
    // Control: it is the namespace's firewall that refuses them (the route through the bridge is there).
    const { netnsPath } = gatewayNames(host().bridge);
    execFileSync('nsenter', [`--net=${netnsPath}`, '--', 'iptables', '-F', 'INPUT']);
    execFileSync('nsenter', [`--net=${netnsPath}`, '--', 'iptables', '-P', 'INPUT', 'ACCEPT']);
    try {
      assert.equal(await connectFromHost(address, blocked), 'connected');
    } finally {
      execFileSync('nsenter', [`--net=${netnsPath}`, '--', 'iptables-restore'], { input: gatewayFirewall(host().subnet, host().driver.network.plan.bridgeAddress) });
    }
    assert.equal(await connectFromHost(address, blocked), 'EHOSTUNREACH');
  });

  it('serves published ports on the host as before', async () => {
    assert.deepEqual(await get(PORT.published), { status: 200, body: 'svc-1\n' });
  });

  it('wakes a service asleep at zero when a container connects to it by name', async () => {
    await apply('sleepy', `${hello('sleepy', PORT.sleepy, PORT.sleepy + 1)}  resources: { cpu: 500m, memory: 128Mi }
  autoscale: { min: 0, max: 1, cpu: 70%, idleToZero: 5m }
`);
    await eventually(async () => daemon!.gateway.listening().includes(`tcp ${await addressOf('sleepy')}:${PORT.sleepy}`), 10_000, 'sleepy\'s listener');
    assert.equal((await host().driver.list()).filter((i) => i.service === 'sleepy').length, 0);
    assert.equal(await askByName('sleepy', PORT.sleepy), 'sleepy-1');
    assert.ok((await store.read()).events.some((e) => e.object === 'service/sleepy' && e.reason === 'Woken'));
  });

  it('keeps serving when its socket binder dies, and starts another for the next port', async () => {
    const first = host().driver.serviceSockets.pid;
    assert.ok(first, 'a binder runs');
    process.kill(first, 'SIGKILL');
    await eventually(async () => host().driver.serviceSockets.pid === null, 5000, 'the binder to be gone');
    assert.equal(await askByName('svc', blocked), 'svc-1', 'sockets handed out before keep working');
    await apply('late', hello('late', PORT.late, PORT.late + 1));
    await converged('late', 1);
    await eventually(async () => daemon!.gateway.listening().includes(`tcp ${await addressOf('late')}:${PORT.late}`), 10_000, 'late\'s listener');
    assert.equal(await askByName('late', PORT.late), 'late-1');
    assert.notEqual(host().driver.serviceSockets.pid, first);
  });

  it('makes the namespace again when it is removed by hand, and listens in the new one', async () => {
    const { netns, veth } = gatewayNames(host().bridge);
    execFileSync('ip', ['link', 'delete', 'dev', veth]);
    execFileSync('ip', ['netns', 'delete', netns]);
    daemon!.reconciler.trigger();
    // The new eth0 has the old one's MAC: instances' ARP entries stay right.
    await eventually(async () => (await askByName('svc', blocked)) === 'svc-1', 15_000, 'svc by name again');
    assert.equal(bridgeTraces(host()).gatewayVeth, true);
    assert.equal(await connectFromHost(await addressOf('svc'), blocked), 'EHOSTUNREACH', 'with its firewall');
  });

  it('reports, not throws, when the binder cannot start', async () => {
    const binder = new SocketBinder(new Runner(cliLogger('silent')), cliLogger('silent'), '/run/netns/carte-gw-no-such-bridge');
    await assert.rejects(binder.tcp('10.200.0.1', 1, () => undefined), { code: 'EBINDER', message: 'the gateway\'s network namespace /run/netns/carte-gw-no-such-bridge does not exist' });
  });

  it('leaves nothing behind: namespace, veth, binder, instances', async () => {
    await daemon!.stop();
    daemon = undefined;
    await host().driver.gc({ keep: new Set() });
    await host().driver.network.removeBridge();
    assert.deepEqual(traces(host()), CLEAN);
    assert.deepEqual(bridgeTraces(host()), BRIDGE_GONE);
  });
});

describe('socket binder (root)', function () {
  this.timeout(60_000);
  before(function () {
    requireRoot(this);
  });

  it('serves connections that arrive while a socket changes hands (the binder passes on what it accepted meanwhile)', async () => {
    // Its own namespace with an address on lo; a client in it hammers ports before and while they are bound.
    const ns = `carte-test-binder-${process.pid}`;
    const address = '10.254.0.1';
    // Below the ephemeral range (32768–60999): its own clients must not take these ports first.
    const base = 20000 + Math.floor(Math.random() * 10000);
    const count = 100;
    execFileSync('ip', ['netns', 'add', ns]);
    const binder = new SocketBinder(new Runner(cliLogger('silent')), cliLogger('silent'), `/run/netns/${ns}`);
    const servers: net.Server[] = [];
    try {
      execFileSync('ip', ['-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
      execFileSync('ip', ['-n', ns, 'addr', 'add', `${address}/32`, 'dev', 'lo']);
      const hammer = spawn('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, '-e', `const net = require('net');
let open = ${count}, served = 0, lost = 0;
const finish = () => { console.log(JSON.stringify({ served, lost })); process.exit(0); };
const ended = () => { if (--open === 0) finish(); };
function attempt(port) {
  const s = net.connect({ host: '${address}', port });
  s.once('connect', () => {
    const t = setTimeout(() => { lost++; s.destroy(); ended(); }, 3000);
    s.once('data', () => { served++; clearTimeout(t); s.destroy(); ended(); });
  });
  s.once('error', () => setTimeout(() => attempt(port), 1));
}
for (let p = ${base}; p < ${base + count}; p++) attempt(p);
setTimeout(finish, 20000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      hammer.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const ended = new Promise((r) => hammer.once('exit', r));
      for (let p = base; p < base + count; p++) servers.push(await binder.tcp(address, p, (c) => c.end('ok')));
      await ended;
      assert.deepEqual(JSON.parse(out), { served: count, lost: 0 });
    } finally {
      for (const s of servers) s.close();
      await binder.close();
      execFileSync('ip', ['netns', 'delete', ns]);
    }
  });
});
