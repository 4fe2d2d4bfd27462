// Two CARTE_HOMEs on one machine never touch each other's instances: the
// netns and cgroups are named with the home's id, gc and the start-up sweep
// only look at their own home's, and a bridge belongs to one home.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DriverError } from '../../src/errors.js';
import { CARTE_DEVGROUP } from '../../src/drivers/linux/firewall.js';
import { BUSYBOX_CARTEFILE, buildImage, eventually, execOut, instance, makeTestHost, requireRoot, type TestHost } from '../helpers/linux.js';

/** What of instance `name` exists on the machine, as its home made it. */
function whole(host: TestHost, name: string) {
  const place = host.driver.placement(name);
  const leaseDir = path.join(host.home, 'cni', host.bridge);
  const leases = fs.existsSync(leaseDir) ? fs.readdirSync(leaseDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  return {
    netns: fs.existsSync(place.netnsPath),
    cgroup: fs.existsSync(`/sys/fs/cgroup/memory${place.cgroupPath}`),
    lease: leases.some((f) => fs.readFileSync(path.join(leaseDir, f), 'utf8').startsWith(name)),
    rootfs: fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(host.driver.paths.dir(name, 'bundle', 'rootfs')),
  };
}

const WHOLE = { netns: true, cgroup: true, lease: true, rootfs: true };

describe('linux driver: two homes on one machine', function () {
  this.timeout(120_000);
  let a: TestHost | undefined;
  let b: TestHost | undefined;

  before(async function () {
    requireRoot(this);
    a = makeTestHost();
    // Same cgroup parent as a, its own bridge and subnet (as the error below asks).
    b = makeTestHost({ cgroupParent: a.cgroupParent });
    await Promise.all([buildImage(a, 'test/busybox:1', BUSYBOX_CARTEFILE), buildImage(b, 'test/busybox:1', BUSYBOX_CARTEFILE)]);
  });
  after(async () => {
    await b?.teardown();
    await a?.teardown();
  });

  it('names netns and cgroups by home: same-named instances of two homes do not meet', async () => {
    await a!.driver.create(instance('web-1', { command: ['busybox', 'sleep', '1000'] }));
    await b!.driver.create(instance('web-1', { command: ['busybox', 'sleep', '1000'] }));
    const [pa, pb] = [a!.driver.placement('web-1'), b!.driver.placement('web-1')];
    assert.equal(pa.netns, `carte-${a!.driver.paths.homeId}-web-1`);
    assert.equal(pa.cgroupPath, `${a!.cgroupParent}/${a!.driver.paths.homeId}/web-1`);
    assert.notEqual(pa.netns, pb.netns);
    assert.notEqual(pa.cgroupPath, pb.cgroupPath);
    assert.deepEqual(whole(a!, 'web-1'), WHOLE);
    assert.deepEqual(whole(b!, 'web-1'), WHOLE);
  });

  it("an instance of one home reaches no instance of the other, either way; its own home's still answer", async () => {
    // A web server in each home, and a client beside each.
    const serve = ['busybox', 'httpd', '-f', '-p', '8080', '-h', '/etc'];
    try {
      for (const h of [a!, b!]) {
        await h.driver.create(instance('srv-1', { command: serve }));
        await h.driver.create(instance('cli-1', { command: ['busybox', 'sleep', '1000'] }));
      }
      const ipOf = async (h: TestHost, name: string) => (await h.driver.observe(name))!.ip!;
      // (busybox-static's wget crashes in a container; nc speaks the request itself.)
      const request = (ip: string) => `printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | busybox timeout 5 busybox nc -w 3 ${ip} 8080 | busybox tail -n 1`;
      const get = async (h: TestHost, ip: string) => (await execOut(h, 'cli-1', ['busybox', 'sh', '-c', request(ip)])).out.trim();
      await eventually(async () => (await get(a!, await ipOf(a!, 'srv-1'))) === 'srv-1', 15_000, "a's server answering in a");
      await eventually(async () => (await get(b!, await ipOf(b!, 'srv-1'))) === 'srv-1', 15_000, "b's server answering in b");
      // b made its rules last: its egress rule comes first in FORWARD, and must not let b into a.
      assert.notEqual(await get(b!, await ipOf(a!, 'srv-1')), 'srv-1', 'b reached a');
      assert.notEqual(await get(a!, await ipOf(b!, 'srv-1')), 'srv-1', 'a reached b');
      for (const h of [a!, b!]) assert.equal(fs.readFileSync(`/sys/class/net/${h.bridge}/netdev_group`, 'utf8').trim(), String(Number(CARTE_DEVGROUP)));
    } finally {
      // The next test counts the instances of each home: only web-1 may be left.
      for (const h of [a!, b!]) for (const n of ['srv-1', 'cli-1']) await h.driver.stop(n, 0).then(() => h.driver.remove(n), () => h.driver.remove(n)).catch(() => undefined);
    }
  });

  it("gc in one home, plain and with an empty keep set, leaves the other's instance whole and running", async () => {
    assert.deepEqual((await a!.driver.gc()).failures, []);
    assert.deepEqual((await a!.driver.gc({ keep: new Set() })).failures, []);
    assert.deepEqual((await a!.driver.list()).map((i) => i.name), []);
    assert.deepEqual((await b!.driver.list()).map((i) => [i.name, i.state, i.problems]), [['web-1', 'running', []]]);
    assert.deepEqual(whole(b!, 'web-1'), WHOLE);
    assert.deepEqual(whole(a!, 'web-1'), { netns: false, cgroup: false, lease: false, rootfs: false });
  });

  it('refuses a bridge that another live home owns, with the exact error, and changes nothing', async () => {
    const intruder = makeTestHost({ bridge: b!.bridge, subnet: b!.subnet });
    try {
      await buildImage(intruder, 'test/busybox:1', BUSYBOX_CARTEFILE);
      const aliasBefore = fs.readFileSync(`/sys/class/net/${b!.bridge}/ifalias`, 'utf8');
      await assert.rejects(intruder.driver.create(instance('web-2', { command: ['busybox', 'sleep', '1000'] })), (e: unknown) => {
        assert.ok(e instanceof DriverError);
        assert.equal(e.message, `failed to use bridge ${b!.bridge}: bridge ${b!.bridge} belongs to CARTE_HOME ${b!.home}; give this home its own: set CARTE_BRIDGE and CARTE_SUBNET`);
        return true;
      });
      assert.equal(fs.readFileSync(`/sys/class/net/${b!.bridge}/ifalias`, 'utf8'), aliasBefore);
      assert.deepEqual(fs.readdirSync(path.join(intruder.home, 'instances')), []);
      assert.equal(fs.existsSync(intruder.driver.placement('web-2').netnsPath), false);
      // removeBridge() of a home that does not own it leaves it alone.
      await intruder.driver.network.removeBridge();
      assert.equal(fs.existsSync(`/sys/class/net/${b!.bridge}`), true);
      assert.deepEqual(whole(b!, 'web-1'), WHOLE);
    } finally {
      await intruder.teardown();
    }
    assert.equal(fs.existsSync(`/sys/class/net/${b!.bridge}`), true, "the intruder's teardown left b's bridge");
  });

  it('adopts a bridge whose owning home is gone', async () => {
    const gone = path.join(a!.home, 'no-such-home');
    const heir = makeTestHost({ bridge: a!.bridge, subnet: a!.subnet });
    try {
      await buildImage(heir, 'test/busybox:1', BUSYBOX_CARTEFILE);
      fs.mkdirSync('/run/netns', { recursive: true });
      const { execFileSync } = await import('node:child_process');
      execFileSync('ip', ['link', 'set', 'dev', a!.bridge, 'alias', `carte:${gone}`]);
      await heir.driver.create(instance('web-3', { command: ['busybox', 'sleep', '1000'] }));
      assert.equal(fs.readFileSync(`/sys/class/net/${a!.bridge}/ifalias`, 'utf8').trim(), `carte:${heir.home}`);
    } finally {
      await heir.teardown();
    }
  });
});
