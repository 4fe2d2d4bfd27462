// Two CARTE_HOMEs on one machine never touch each other's instances: the
// netns and cgroups are named with the home's id, gc and the start-up sweep
// only look at their own home's, and a bridge belongs to one home.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DriverError } from '../../src/errors.js';
import { BUSYBOX_CARTEFILE, buildImage, instance, makeTestHost, requireRoot, type TestHost } from '../helpers/linux.js';

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
