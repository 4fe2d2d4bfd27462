// The autoscaler against real containers: CPU read from the cgroups of
// busy-looping instances scales a service up to its max and back down after
// the load stops; memory held in tmpfs scales another on memory; a service at
// min 0 goes idle without traffic and wakes on a request. The daemon runs
// in-process, sampling every 500 ms.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { applyServices } from '../../src/api/apply.js';
import { hostRealPath } from '../../src/policy/facts.js';
import { parsePolicy } from '../../src/policy/load.js';
import { serviceStatuses } from '../../src/api/status.js';
import { startDaemon, type RunningDaemon } from '../../src/daemon/daemon.js';
import { cliLogger } from '../../src/log.js';
import { Store } from '../../src/store/store.js';
import { buildImage, eventually, useTestHost } from '../helpers/linux.js';
import { services } from '../helpers/manifests.js';
import { fixture, tempDir } from '../helpers/paths.js';

const PORT = 41000 + Math.floor(Math.random() * 20000);

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 30_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

describe('scaler (root, real containers)', function () {
  this.timeout(120_000);
  let daemon: RunningDaemon | undefined;
  let store: Store;
  const ctl = tempDir('carte-ctl-');
  after(async () => {
    await daemon?.stop();
    fs.rmSync(ctl, { recursive: true, force: true });
  });
  const host = useTestHost();
  const manifests: Record<string, string> = {};

  async function apply(name: string, text: string): Promise<void> {
    manifests[name] = text;
    // The control folder is a host path: this test's policy allows it (read-only), as an admin's would.
    const { policy } = parsePolicy(`volumes:\n  hostPaths: [{ path: ${ctl} }]\n`, 'test-policy.yaml');
    const admission = { policy: policy!, home: host().home, realpath: hostRealPath };
    await applyServices(store, { services: services({ 'm.yaml': Object.values(manifests).join('---\n') }), source: 'cli', prune: true, admission });
    daemon!.reconciler.trigger();
  }
  const instancesOf = async (service: string) => (await host().driver.list()).filter((i) => i.service === service && i.state === 'running').length;
  const events = async (service: string) => (await store.read()).events.filter((e) => e.object === `service/${service}`);

  before(async () => {
    await buildImage(host(), 'test/hello:1', fs.readFileSync(fixture('hello', 'Cartefile'), 'utf8'), { 'server.js': fs.readFileSync(fixture('hello', 'server.js'), 'utf8') });
    store = Store.open(host().home);
    daemon = await startDaemon({ home: host().home, log: cliLogger(process.env.CARTE_TEST_DEBUG ? 'debug' : 'silent'), driver: host().driver, watch: [], git: [], publishAddress: '127.0.0.1', scaler: { intervalMs: 500 } });
  });

  it('scales a CPU-bound service up to its max under load, and back down after the window', async () => {
    await apply('burner', `apiVersion: carte/v1
kind: Service
metadata: { name: burner }
spec:
  image: test/busybox:1
  # Burns CPU while /ctl/burn exists.
  command: [sh, -c, "while :; do if [ -e /ctl/burn ]; then :; else busybox sleep 0.5; fi; done"]
  resources: { cpu: 100m, memory: 32Mi }
  volumes: [{ hostPath: ${ctl}, mountPath: /ctl, readOnly: true }]
  stopGracePeriod: 1s
  autoscale: { min: 1, max: 3, cpu: 50%, scaleDownDelay: 3s }
`);
    await eventually(async () => (await instancesOf('burner')) === 1, 30_000, 'one burner');
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await instancesOf('burner'), 1, 'no load: stays at 1');
    fs.writeFileSync(path.join(ctl, 'burn'), '');
    await eventually(async () => (await instancesOf('burner')) === 3, 60_000, 'three burners');
    const up = (await events('burner')).filter((e) => e.reason === 'Autoscaled').map((e) => e.message);
    assert.match(up[0]!, /^burner 1→2: cpu \d+% of 50% target \(avg over 1 ready instance\)/);
    fs.rmSync(path.join(ctl, 'burn'));
    await eventually(async () => (await instancesOf('burner')) === 1, 60_000, 'back to one');
    const down = (await events('burner')).filter((e) => e.reason === 'Autoscaled').at(-1)!.message;
    assert.match(down, /^burner [23]→1: cpu \d+% of 50% target \(avg over [23] ready instances\); highest recommendation of the last 3s$/);
  });

  it('scales a memory-bound service on its working set', async () => {
    await apply('hog', `apiVersion: carte/v1
kind: Service
metadata: { name: hog }
spec:
  image: test/busybox:1
  # Holds 24 MiB in tmpfs: working set, not reclaimable cache. Ready (and so sampled) once it holds all of it.
  command: [sh, -c, "busybox dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; busybox touch /dev/shm/full; exec busybox sleep 100000"]
  health: { exec: { command: [busybox, test, -e, /dev/shm/full] }, interval: 500ms }
  resources: { cpu: 100m, memory: 64Mi }
  stopGracePeriod: 1s
  autoscale: { min: 1, max: 2, memory: 20%, scaleDownDelay: 1m }
`);
    await eventually(async () => (await instancesOf('hog')) === 2, 60_000, 'two hogs');
    const up = (await events('hog')).find((e) => e.reason === 'Autoscaled')!.message;
    assert.match(up, /^hog 1→2: memory \d+% of 20% target \(avg over 1 ready instance\)/);
    const pct = Number(/memory (\d+)%/.exec(up)![1]);
    assert.ok(pct >= 37 && pct <= 60, `24 MiB of 64 MiB is about 38 % (plus the shell), got ${pct} %`);
  });

  it('puts a service at min 0 to sleep without traffic, shows it Idle, and wakes it on a request', async () => {
    await apply('nap', `apiVersion: carte/v1
kind: Service
metadata: { name: nap }
spec:
  image: test/hello:1
  ports: [{ port: 8080, publish: ${PORT} }]
  health: { http: { path: /health, port: 8080 }, interval: 1s }
  resources: { cpu: 200m, memory: 96Mi }
  stopGracePeriod: 2s
  autoscale: { min: 0, max: 2, cpu: 80%, idleToZero: 2s }
`);
    await eventually(async () => daemon!.gateway.listening().includes(`tcp 127.0.0.1:${PORT}`), 10_000, 'the published port');
    assert.deepEqual(await get(PORT), { status: 200, body: 'nap-1\n' });
    await eventually(async () => (await instancesOf('nap')) === 0, 30_000, 'nap asleep');
    assert.ok((await events('nap')).some((e) => e.reason === 'ScaledToZero' && e.message === 'nap 1→0: no connections for 2s'));
    await eventually(async () => serviceStatuses(await store.read(), Date.now()).find((s) => s.name === 'nap')?.phase === 'Idle', 10_000, 'Idle');
    assert.deepEqual(await get(PORT), { status: 200, body: 'nap-1\n' });
  });
});
