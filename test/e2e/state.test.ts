// The control plane never forgets: with a daemon running real containers, a
// state.json damaged under it is recovered by the daemon itself with what
// runs left alone, and `carte state restore` of an older state is converged.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { StateData } from '../../src/store/state.js';
import { buildBusybox, damageState, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { eventually, requireRoot } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

describe('e2e: a damaged or restored state under a running daemon', function () {
  this.timeout(120_000);
  let e: E2eEnv;
  let work: string;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    work = tempDir('carte-manifests-');
    await buildBusybox(e);
  });
  after(async () => {
    await e?.teardown();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const apply = async (replicas: number) => {
    fs.writeFileSync(path.join(work, 'web.yaml'), webManifest({ replicas }));
    const r = await e.carte(['apply', '-f', path.join(work, 'web.yaml')]);
    assert.equal(r.code, 0, r.stderr);
  };
  const readyCount = () => readiness(e.state(), 'web').filter((i) => i.ready).length;
  /** Instances that really run, from the driver (the state's records could be a restored past). */
  const running = async () => {
    const r = await e.carte(['get', 'instances', '-o', 'json']);
    return (JSON.parse(r.stdout) as { items: Array<{ name: string; state: string }> }).items.filter((i) => i.state === 'running').map((i) => i.name).sort();
  };
  /** The state as a test reads it, or null while it is not JSON. */
  const stateOrNull = (): StateData | null => {
    try {
      return e.state();
    } catch {
      return null;
    }
  };

  it('the daemon recovers a damaged state.json by itself and keeps what runs; a restore is converged', async () => {
    e.daemon(['--resync', '1s']);
    // Until it listens, apply would converge in-process and hold the daemon's converge lock.
    await eventually(async () => (await e.carte(['status'])).stdout.startsWith('daemon: running\n'), 20_000, 'the daemon to listen');
    await apply(1);
    await eventually(async () => readyCount() === 1, 20_000, 'one ready instance');
    const backup = path.join(work, 'one-replica.json');
    fs.copyFileSync(path.join(e.home, 'state.json'), backup);
    await apply(3);
    await eventually(async () => readyCount() === 3, 20_000, 'three ready instances');

    // Damage it under the daemon; no carte command runs until the daemon has recovered it.
    await damageState(e.home, '{"version": 1, "services": {');
    const recovered = await eventually(async () => stateOrNull()?.recovery, 20_000, 'the daemon to recover the state');
    assert.match(recovered.reason, /^not valid JSON \(/);
    assert.equal(fs.readFileSync(recovered.damagedFile!, 'utf8'), '{"version": 1, "services": {');
    assert.equal(e.state().services.web?.revision.spec.replicas, 3);
    assert.deepEqual(await running(), ['web-1', 'web-2', 'web-3']);
    const events = await e.carte(['events']);
    assert.match(events.stdout, /Warning +store\/state +StateRecovered +state\.json was damaged \(not valid JSON/);
    assert.equal((await e.carte(['state', 'verify'])).code, 0);

    const restore = await e.carte(['state', 'restore', backup]);
    assert.equal(restore.code, 0, restore.stderr);
    assert.match(restore.stdout, /^state restored from .*one-replica\.json \(generation \d+\) written at \S+Z; it is now generation \d+\n$/);
    await eventually(async () => (await running()).length === 1, 30_000, 'the daemon to converge to the restored single replica');
    assert.equal(e.state().services.web?.revision.spec.replicas, 1);
  });
});
