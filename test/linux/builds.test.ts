// Builds with RUN and several stages, for real: build containers made by the
// driver (runc, overlayfs), layers from their upper folders (whiteouts and
// opaque folders included), the content-keyed cache, the network off, and
// nothing left behind by a failing step or a builder killed with -9.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { LinuxDriver } from '../../src/drivers/linux/driver.js';
import { cliLogger } from '../../src/log.js';
import { CLEAN, eventually, execOut, instance, traces, useTestHost } from '../helpers/linux.js';
import { ROOT, tempDir } from '../helpers/paths.js';

describe('linux driver: builds with RUN and stages', function () {
  this.timeout(120_000);
  const host = useTestHost();
  let ctx: string;
  beforeEach(() => {
    ctx = tempDir('carte-build-');
  });
  afterEach(async () => {
    fs.rmSync(ctx, { recursive: true, force: true });
    for (const i of await host().driver.list()) await host().driver.remove(i.name);
  });

  const build = async (cartefile: string, tag: string) => {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), cartefile);
    const lines: string[] = [];
    const result = await host().driver.builder.build({ context: ctx, tag, onProgress: (l) => lines.push(l) });
    return { result, lines };
  };
  const failure = async (cartefile: string) => {
    try {
      await build(cartefile, 'test/fails:1');
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  /** What builds leave in CARTE_HOME/builds: nothing but the runc root, and no build container in it. */
  const buildLeftovers = () => ({
    folders: fs.readdirSync(path.join(host().home, 'builds')).filter((f) => f !== '.runc'),
    containers: fs.readdirSync(path.join(host().home, 'builds', '.runc')),
  });

  it('runs RUN steps in stages, copies from a stage, deletes through whiteouts and opaque folders, and rebuilds all from the cache', async () => {
    const cartefile = `FROM test/busybox:1 AS build
RUN busybox mkdir -p /out/sub && echo hi > /out/a && echo x > /out/gone && echo y > /out/sub/old && echo made
FROM build AS trimmed
RUN busybox rm /out/gone && busybox rm -r /out/sub && busybox mkdir /out/sub && echo new > /out/sub/new
FROM test/busybox:1
COPY --from=0 /out/a /a
COPY --from=trimmed /out /out
CMD ["/bin/busybox", "sleep", "3600"]
`;
    const first = await build(cartefile, 'test/stages:1');
    assert.deepEqual([first.result.cachedSteps, first.result.steps], [0, 4]);
    assert.ok(first.lines.includes('  | made'), first.lines.join('\n'));
    await host().driver.create(instance('stages-1', { image: 'test/stages:1' }));
    assert.deepEqual(await execOut(host(), 'stages-1', ['/bin/sh', '-c', 'cat /a; ls /out; ls /out/sub']), { code: 0, out: 'hi\na\nsub\nnew\n' });

    const again = await build(cartefile, 'test/stages:1');
    assert.deepEqual([again.result.cachedSteps, again.result.steps], [4, 4], 'an unchanged Cartefile is all cached');
    assert.equal(again.result.image.id, first.result.image.id);

    // The trimmed stage as an image of its own (its layers from the cache): the RUN layer's
    // whiteout and opaque folder hide the lower layer's files in an instance's rootfs too.
    const trimmed = await build(cartefile.split('FROM test/busybox:1\n')[0]! + 'CMD ["/bin/busybox", "sleep", "3600"]\n', 'test/trimmed:1');
    assert.deepEqual([trimmed.result.cachedSteps, trimmed.result.steps], [2, 2]);
    await host().driver.create(instance('trimmed-1', { image: 'test/trimmed:1' }));
    assert.deepEqual(await execOut(host(), 'trimmed-1', ['/bin/sh', '-c', 'ls /out; ls /out/sub']), { code: 0, out: 'a\nsub\nnew\n' });
    assert.deepEqual(buildLeftovers(), { folders: [], containers: [] });
  });

  it('runs RUN with the network off: only lo, and a listener on the bridge address is never reached', async () => {
    await host().driver.create(instance('net-1')); // brings the bridge up
    const connections: net.Socket[] = [];
    const server = net.createServer((s) => {
      connections.push(s);
      s.destroy();
    });
    const address = host().driver.network.plan.bridgeAddress;
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const { lines } = await build(`FROM test/busybox:1
RUN busybox ls /sys/class/net; echo | busybox nc ${address} ${port} 2>/dev/null; echo "nc exit $?"
`, 'test/netoff:1');
      assert.deepEqual(lines.filter((l) => l.startsWith('  | ')), ['  | lo', '  | nc exit 1']);
      assert.equal(connections.length, 0);
    } finally {
      server.close();
    }
  });

  it('fails on a RUN that exits non-zero, naming the step and line, and leaves nothing behind', async () => {
    const message = await failure('FROM test/busybox:1\nENV A=1\nRUN echo about to fail; busybox false\nCMD ["/bin/sh"]\n');
    assert.equal(message, `${path.relative(process.cwd(), path.join(ctx, 'Cartefile'))}:3: RUN echo about to fail; busybox false: the command exited with code 1 (step 3/4)`);
    assert.deepEqual(traces(host()), CLEAN);
    assert.deepEqual(buildLeftovers(), { folders: [], containers: [] });
    assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(path.join(host().home, 'builds'))).length, 0);
  });

  it('runs RUN under the build limits: its cgroup has them, and a step past its time is killed', async () => {
    const h = host();
    const limited = new LinuxDriver({
      home: h.home, log: cliLogger('error'), bridge: h.bridge, subnet: h.subnet, cgroupParent: h.cgroupParent,
      buildLimits: () => ({ cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 64, timeoutMs: 1500 }),
    });
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM test/busybox:1\nRUN cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us\n');
    const lines: string[] = [];
    await limited.builder.build({ context: ctx, tag: 'test/limits:1', onProgress: (l) => lines.push(l) });
    assert.deepEqual(lines.filter((l) => l.startsWith('  | ')), ['  | 64', `  | ${64 * 2 ** 20}`, '  | 50000']);
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM test/busybox:1\nRUN busybox sleep 60\n');
    await assert.rejects(limited.builder.build({ context: ctx, tag: 'test/limits:2' }), {
      message: `${path.relative(process.cwd(), path.join(ctx, 'Cartefile'))}:2: RUN busybox sleep 60: the step ran out of time (the server policy's builds.limits.timeout) and was killed`,
    });
    assert.deepEqual(buildLeftovers(), { folders: [], containers: [] });
    assert.deepEqual(traces(h), CLEAN);
  });

  it('fails on a RUN that nests folders deeper than a host path may be, naming the step; the next build and gc still work', async () => {
    // 3000 levels: under 4096 characters inside the container, far past PATH_MAX under CARTE_HOME/builds/<id>/upper.
    const message = await failure('FROM test/busybox:1\nRUN cd / && i=0; while [ $i -lt 3000 ]; do busybox mkdir d && cd d || break; i=$((i+1)); done\n');
    assert.match(message, /:2: RUN cd \/ && i=0; .*: it made a path too long to store as a layer \(folders nested too deep\); keep paths under 4096 characters$/);
    assert.deepEqual(buildLeftovers(), { folders: [], containers: [] });
    assert.deepEqual((await host().driver.gc()).failures, []);
    const { result } = await build('FROM test/busybox:1\nRUN busybox echo fine > /ok\n', 'test/after-deep:1');
    assert.equal(result.ref, 'test/after-deep:1');
  });

  it('runs RUN like an instance: seccomp on, the instances\' capabilities, as USER, in WORKDIR, with ENV and ARG; a Dockerfile builds with -f', async () => {
    const h = host();
    await h.driver.create(instance('caps-1', { command: ['/bin/sh', '-c', 'exec busybox sleep 3600'] }));
    const status = (await execOut(h, 'caps-1', ['/bin/sh', '-c', 'busybox grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status'])).out;
    fs.writeFileSync(path.join(ctx, 'Dockerfile'), `FROM test/busybox:1
ARG GREETING=hello
ENV WHO=world
WORKDIR /work
RUN busybox grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status; busybox pwd; echo "$GREETING $WHO"
USER 10001:10001
RUN busybox id -u; busybox id -g
`);
    const lines: string[] = [];
    await h.driver.builder.build({ context: ctx, cartefile: 'Dockerfile', tag: 'test/asinstance:1', onProgress: (l) => lines.push(l) });
    const out = lines.filter((l) => l.startsWith('  | ')).map((l) => l.slice(4));
    assert.deepEqual(out, [...status.trim().split('\n'), '/work', 'hello world', '10001', '10001']);
    assert.match(status, /^Seccomp:\s+2$/m);
  });

  it('sweeps what a builder killed with -9 in the middle of a RUN left: container, mounts, cgroup, folder', async () => {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM test/busybox:1\nRUN echo started; busybox sleep 600\n');
    const h = host();
    const script = `
      import { LinuxDriver } from ${JSON.stringify(path.join(ROOT, 'dist/src/drivers/linux/driver.js'))};
      import { cliLogger } from ${JSON.stringify(path.join(ROOT, 'dist/src/log.js'))};
      const d = new LinuxDriver({ home: ${JSON.stringify(h.home)}, log: cliLogger('error'), bridge: ${JSON.stringify(h.bridge)}, subnet: ${JSON.stringify(h.subnet)}, cgroupParent: ${JSON.stringify(h.cgroupParent)} });
      await d.builder.build({ context: ${JSON.stringify(ctx)}, tag: 'test/killed:1', onProgress: (l) => console.log(l) });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await eventually(async () => out.includes('  | started'), 30_000, 'the RUN step to start');
      assert.equal(buildLeftovers().folders.length, 1);
      assert.equal(buildLeftovers().containers.length, 1);
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
