// The policy's disk.perService, end to end: a service whose instance writes
// past its quota over its image is replaced (a fresh writable layer), with
// the numbers in a Warning event and the reason on the restart.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { eventually, requireRoot } from '../helpers/linux.js';
import { buildBusybox, makeE2eEnv, readiness, type E2eEnv } from '../helpers/e2e.js';
import { CARTE, tempDir } from '../helpers/paths.js';

describe('e2e: per-service disk quota', function () {
  this.timeout(120_000);
  let e: E2eEnv;
  let dir: string;
  let daemon: ChildProcess | null = null;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    dir = tempDir('carte-disk-');
    await buildBusybox(e);
  });
  after(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGTERM'); // the daemon this test started
      await new Promise((r) => daemon!.once('exit', r));
    }
    await e?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replaces the instance that wrote past its service\'s quota, and says why', async () => {
    const manifests = path.join(dir, 'manifests');
    fs.mkdirSync(manifests);
    fs.writeFileSync(path.join(dir, 'policy.yaml'), 'disk:\n  perService: 8Mi\n');
    fs.writeFileSync(path.join(manifests, 'hog.yaml'), `apiVersion: carte/v1
kind: Service
metadata: { name: hog }
spec:
  image: e2e/busybox:1
  # 16 MiB over its image, then idle: twice its service's quota.
  command: [sh, -c, "busybox dd if=/dev/zero of=/fill bs=1M count=16 2>/dev/null; exec busybox sleep 100000"]
  stopGracePeriod: 0s
`);
    daemon = spawn(CARTE, ['--policy', path.join(dir, 'policy.yaml'), 'daemon', '--log-level', 'warn', '--watch', manifests, '--resync', '1s', '--disk-interval', '1s'], { env: e.env, stdio: 'ignore' });
    const warning = await eventually(async () => e.state().events.find((ev) => ev.reason === 'DiskQuotaExceeded'), 60_000, 'the quota warning');
    assert.match(warning.message, /^hog uses 16\.\dMi of its 8Mi disk quota \(writable layers 16\.\dMi, volumes 0Ki\): hog-1 wrote 16\.\dMi and is replaced$/);
    // The restart's event is written when the new instance is made (its record may be seen a moment before).
    const restarted = await eventually(async () => e.state().events.find((ev) => ev.reason === 'InstanceRestarted' && ev.message.startsWith('hog-1 restarted (1): ')), 30_000, 'hog-1 replaced');
    assert.match(restarted.message, /^hog-1 restarted \(1\): hog uses 16\.\dMi of its 8Mi disk quota/);
    assert.ok((readiness(e.state(), 'hog').find((i) => i.name === 'hog-1')?.restarts ?? 0) >= 1);
  });
});
