// `carte build --network` for real: a RUN step with the network joins carte's
// bridge like an instance (own namespace, a CNI lease, the bridge's firewall),
// reaches a peer beyond the host and not the host's other ports; without it
// the step reaches nothing. A failing step and a builder killed with -9 leave
// no namespace, lease or rule behind.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLEAN, eventually, firewallRules, traces, useTestHost } from '../helpers/linux.js';
import { ROOT, tempDir } from '../helpers/paths.js';

describe('linux driver: RUN steps with the network (carte build --network)', function () {
  this.timeout(120_000);
  const host = useTestHost();
  const id = (process.pid + 7) % 250;
  const peer = { netns: `carte-test-bpeer-${process.pid}`, veth: `ctbpeer${process.pid % 100000}`, hostIp: `10.252.${id}.1`, ip: `10.252.${id}.2`, port: 20000 + (process.pid % 20000) };
  let server: ChildProcess | undefined;
  let ctx: string;

  before(() => {
    // A peer "out in the world": a namespace routed through the host, as firewall.test.ts makes one.
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
    try {
      if (fs.existsSync(`/sys/class/net/${peer.veth}`)) execFileSync('ip', ['link', 'delete', 'dev', peer.veth], { stdio: 'ignore' });
    } catch {
      // gone meanwhile with its namespace
    }
  });
  beforeEach(() => {
    ctx = tempDir('carte-buildnet-');
  });
  afterEach(() => {
    fs.rmSync(ctx, { recursive: true, force: true });
  });

  const build = async (cartefile: string, tag: string, network: boolean) => {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), cartefile);
    const lines: string[] = [];
    await host().driver.builder.build({ context: ctx, tag, network, onProgress: (l) => lines.push(l) });
    return lines.filter((l) => l.startsWith('  | ')).map((l) => l.slice(4));
  };
  const buildLeftovers = () => ({
    folders: fs.readdirSync(path.join(host().home, 'builds')).filter((f) => f !== '.runc'),
    containers: fs.readdirSync(path.join(host().home, 'builds', '.runc')),
  });

  it('with the network a RUN reaches a peer beyond the host but not a host port; without it, neither; nothing is left after', async () => {
    // A listener on every host address, the bridge's included: neither published nor in the policy's hostPorts.
    const connections: net.Socket[] = [];
    const hostServer = net.createServer((s) => {
      connections.push(s);
      s.destroy();
    });
    await new Promise<void>((resolve) => hostServer.listen(0, '0.0.0.0', resolve));
    const hostPort = (hostServer.address() as net.AddressInfo).port;
    const probe = `FROM test/busybox:1
RUN busybox ls /sys/class/net; echo | busybox nc -w 3 ${peer.ip} ${peer.port} 2>/dev/null; echo "peer nc exit $?"; echo | busybox nc -w 3 ${host().driver.network.plan.bridgeAddress} ${hostPort} 2>/dev/null; echo "host nc exit $?"
`;
    try {
      assert.deepEqual(await build(probe, 'test/neton:1', true), ['eth0', 'lo', 'peer', 'peer nc exit 0', 'host nc exit 1']);
      assert.deepEqual(traces(host()), CLEAN);
      assert.deepEqual(buildLeftovers(), { folders: [], containers: [] });
      // The same step without the network: the cache key is the step's text, so change it by a comment.
      assert.deepEqual(await build(probe.replace('RUN ', 'RUN : off; '), 'test/netoff:1', false), ['lo', 'peer nc exit 1', 'host nc exit 1']);
      assert.equal(connections.length, 0);
    } finally {
      hostServer.close();
    }
  });

  it('a manifest\'s build.network reaches the driver: ensureImage builds with the network only when asked', async () => {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM test/busybox:1\nARG WHICH\nRUN busybox ls /sys/class/net > /nets\n');
    const nets = async (tag: string) => {
      const image = await host().driver.images.get(tag);
      return fs.readFileSync(path.join(host().driver.images.layerPath(image.layers.at(-1)!), 'nets'), 'utf8');
    };
    await host().driver.ensureImage({ context: ctx, cartefile: 'Cartefile', args: { WHICH: 'on' }, network: true }, 'test/ensure-on:1');
    await host().driver.ensureImage({ context: ctx, cartefile: 'Cartefile', args: { WHICH: 'off' } }, 'test/ensure-off:1');
    assert.deepEqual([await nets('test/ensure-on:1'), await nets('test/ensure-off:1')], ['eth0\nlo\n', 'lo\n']);
    assert.deepEqual(traces(host()), CLEAN);
  });

  it('a failing networked RUN leaves no namespace, lease, veth or firewall rule', async () => {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM test/busybox:1\nRUN busybox ls /sys/class/net; busybox false\n');
    const lines: string[] = [];
    await assert.rejects(host().driver.builder.build({ context: ctx, tag: 'test/netfail:1', network: true, onProgress: (l) => lines.push(l) }), {
      message: `${path.relative(process.cwd(), path.join(ctx, 'Cartefile'))}:2: RUN busybox ls /sys/class/net; busybox false: the command exited with code 1 (step 2/2)`,
    });
    assert.deepEqual(lines.filter((l) => l.startsWith('  | ')), ['  | eth0', '  | lo']);
    assert.deepEqual(traces(host()), CLEAN);
    assert.deepEqual(buildLeftovers(), { folders: [], containers: [] });
  });

  it('the sweep removes what a networked builder killed with -9 left: lease, namespace, veth, layer-2 rules', async () => {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM test/busybox:1\nRUN echo started; busybox sleep 600\n');
    const h = host();
    const script = `
      import { LinuxDriver } from ${JSON.stringify(path.join(ROOT, 'dist/src/drivers/linux/driver.js'))};
      import { cliLogger } from ${JSON.stringify(path.join(ROOT, 'dist/src/log.js'))};
      const d = new LinuxDriver({ home: ${JSON.stringify(h.home)}, log: cliLogger('error'), bridge: ${JSON.stringify(h.bridge)}, subnet: ${JSON.stringify(h.subnet)}, cgroupParent: ${JSON.stringify(h.cgroupParent)} });
      await d.builder.build({ context: ${JSON.stringify(ctx)}, tag: 'test/netkilled:1', network: true, onProgress: (l) => console.log(l) });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await eventually(async () => out.includes('  | started'), 30_000, 'the RUN step to start');
      const during = traces(h);
      assert.equal(during.leases.length, 1);
      assert.deepEqual(during.netns.map((n) => n.replace(/[0-9a-f]{12}$/, 'ID')), [`carte-${h.driver.paths.homeId}-build.ID`]);
      assert.equal(during.veths.length, 1);
      // Its address and MAC pinned at layer 2, like an instance's.
      assert.equal(firewallRules(h).filter((l) => l.includes(`-i ${during.veths[0]} `)).length, 4);
      // A gc while the builder lives (the daemon's at start, carte gc) leaves its step and network alone.
      const live = await h.driver.gc();
      assert.deepEqual([live.removed.filter((r) => !r.startsWith('image') && !r.startsWith('layer')), live.failures], [[], []]);
      assert.deepEqual(traces(h).leases, during.leases);
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    const report = await h.driver.gc();
    assert.equal(report.removed.filter((r) => r.startsWith('build container ')).length, 1);
    assert.deepEqual(report.failures, []);
    assert.deepEqual(buildLeftovers(), { folders: [], containers: [] });
    assert.deepEqual(traces(h), CLEAN);
  });
});
