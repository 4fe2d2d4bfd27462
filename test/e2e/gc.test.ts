// `carte gc` on a home with nothing left to run: its bridge goes, and with it
// carte's firewall chains for that bridge and the gateway's namespace
// (issue 14). While a service is stored, or a daemon runs, the bridge stays.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LinuxDriver } from '../../src/drivers/linux/driver.js';
import { cliLogger } from '../../src/log.js';
import { buildBusybox, makeE2eEnv, type E2eEnv } from '../helpers/e2e.js';
import { BRIDGE_GONE, bridgeTraces, eventually, firewallRules, requireRoot } from '../helpers/linux.js';

const manifest = `apiVersion: carte/v1
kind: Service
metadata: { name: web }
spec:
  image: e2e/busybox:1
  command: [busybox, sleep, "1000"]
  stopGracePeriod: 1s
`;

describe('e2e: carte gc removes an idle home\'s bridge', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let dir: string;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    await buildBusybox(e);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'carte-gc-'));
    fs.writeFileSync(path.join(dir, 'web.yaml'), manifest);
  });
  after(async () => {
    await e?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const bridge = () => e.env.CARTE_BRIDGE!;
  const traces = () => bridgeTraces({ bridge: bridge(), driver: new LinuxDriver({ home: e.home, log: cliLogger('silent'), bridge: bridge(), subnet: e.env.CARTE_SUBNET!, cgroupParent: e.env.CARTE_CGROUP_PARENT! }) });

  it('keeps the bridge while a service is stored or a daemon runs, and removes it, its rules and the gateway namespace after', async () => {
    const applied = await e.carte(['apply', '-f', dir]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.ok(fs.existsSync(`/sys/class/net/${bridge()}`));
    assert.ok(firewallRules({ bridge: bridge() }).length > 0);
    assert.deepEqual(await e.carte(['gc']), { code: 0, stdout: 'nothing to clean\n', stderr: '' });
    assert.ok(fs.existsSync(`/sys/class/net/${bridge()}`), 'a stored service keeps the bridge');

    assert.equal((await e.carte(['delete', 'web'])).code, 0);
    const daemon = e.daemon([]);
    await eventually(async () => fs.existsSync(path.join(e.home, 'carte.sock')), 30_000, 'the daemon');
    assert.deepEqual(await e.carte(['gc']), { code: 0, stdout: 'nothing to clean\n', stderr: '' });
    assert.ok(fs.existsSync(`/sys/class/net/${bridge()}`), 'a running daemon keeps the bridge');
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));

    const parent = e.env.CARTE_CGROUP_PARENT!;
    const homeId = new LinuxDriver({ home: e.home, log: cliLogger('silent'), bridge: bridge(), subnet: e.env.CARTE_SUBNET!, cgroupParent: parent }).paths.homeId;
    assert.ok(fs.existsSync(`/sys/fs/cgroup/memory${parent}/${homeId}`), 'the home\'s cgroup folder, left by its instance');
    assert.deepEqual(await e.carte(['gc']), {
      code: 0, stdout: `removed bridge ${bridge()} (its firewall rules and the gateway's namespace)\nremoved cgroup ${parent}/${homeId}\nremoved cgroup ${parent}\n`, stderr: '',
    });
    assert.deepEqual(traces(), BRIDGE_GONE);
    assert.equal(fs.existsSync(`/sys/fs/cgroup/memory${parent}`), false, 'no cgroup folder left');
    assert.deepEqual(await e.carte(['gc']), { code: 0, stdout: 'nothing to clean\n', stderr: '' });
  });
});
