// `carte build --network` for real: a RUN step with the network joins carte's
// bridge like an instance (own namespace, a CNI lease, the bridge's firewall),
// reaches a peer beyond the host and not the host's other ports; without it
// the step reaches nothing. A failing step and a builder killed with -9 leave
// no namespace, lease or rule behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CLEAN, eventually, firewallRules, traces, usePeerNamespace, useTestHost } from '../helpers/linux.js';
import { ROOT, tempDir } from '../helpers/paths.js';

describe('linux driver: RUN steps with the network (carte build --network)', function () {
  this.timeout(120_000);
  const host = useTestHost();
  // A peer "out in the world": a namespace routed through the host.
  const peer = usePeerNamespace('bpeer', 252, 20000 + (process.pid % 20000));
  let ctx: string;

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
