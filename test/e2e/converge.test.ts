import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eventually, requireRoot } from '../helpers/linux.js';
import { BUSYBOX_CARTEFILE, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { tempDir } from '../helpers/paths.js';

describe('e2e: carte and its daemon converge real containers', function () {
  this.timeout(120_000);
  let e: E2eEnv;
  let manifests: string;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    manifests = tempDir('carte-manifests-');
    const ctx = tempDir('carte-ctx-');
    fs.writeFileSync(path.join(ctx, 'Cartefile'), BUSYBOX_CARTEFILE);
    const built = await e.carte(['build', '-q', '-t', 'e2e/busybox:1', ctx]);
    fs.rmSync(ctx, { recursive: true, force: true });
    assert.equal(built.code, 0, built.stderr);
  });
  after(async () => {
    await e?.teardown();
    if (manifests) fs.rmSync(manifests, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => fs.writeFileSync(path.join(manifests, name), text);
  const readyCount = (service: string) => readiness(e.state(), service).filter((i) => i.ready).length;

  it('without a daemon, apply stores and converges once, in-process', async () => {
    const file = path.join(manifests, '..', `${path.basename(manifests)}-solo.yaml`);
    fs.writeFileSync(file, webManifest({ name: 'solo', replicas: 2 }));
    try {
      const r = await e.carte(['apply', '-f', file, '--wait', '--timeout', '30s']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^service\/solo created\n/);
      assert.match(r.stdout, /solo-1 created \(revision 1\): scaling to 2/);
      assert.deepEqual(readiness(e.state(), 'solo').map((i) => [i.name, i.ready]), [['solo-1', true], ['solo-2', true]]);
      const del = await e.carte(['delete', 'solo']);
      assert.equal(del.code, 0, del.stderr);
      assert.deepEqual(readiness(e.state(), 'solo'), []);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('a daemon watching a folder converges it, and follows edits', async () => {
    write('web.yaml', webManifest({ replicas: 2 }));
    e.daemon(['--watch', manifests, '--resync', '1s']);
    await eventually(async () => readyCount('web') === 2, 20_000, 'two ready instances');
    write('web.yaml', webManifest({ replicas: 4 }));
    await eventually(async () => readyCount('web') === 4, 20_000, 'four ready instances');
    const status = await e.carte(['status']);
    assert.match(status.stdout, /^daemon: running\n/);
    assert.match(status.stdout, /\nweb    4\/4     Converged   -\n/);
  });

  it('notices an instance killed with kill -9 and replaces it', async () => {
    const list = JSON.parse((await e.carte(['get', 'instances', 'web-2', '-o', 'json'])).stdout) as { pid: number };
    process.kill(list.pid, 'SIGKILL'); // the container's pid 1, started by this test's daemon
    await eventually(async () => readiness(e.state(), 'web').find((i) => i.name === 'web-2' && i.restarts === 1 && i.ready), 20_000, 'web-2 restarted');
    assert.equal(readyCount('web'), 4);
  });

  it('refuses an invalid file with its location, and keeps what runs', async () => {
    write('web.yaml', `${webManifest({ replicas: 1 })}  replicaz: 3\n`);
    await eventually(async () => e.state().sources[`folder:${manifests}`]?.lastError ?? undefined, 10_000, 'the error');
    const status = (await e.carte(['status'])).stdout;
    assert.match(status, new RegExp(`${manifests.replace(/[/.]/g, '\\$&')}/web\\.yaml:11:3: spec\\.replicaz: unknown field "replicaz" \\(did you mean "replicas"\\?\\)`));
    assert.equal(readyCount('web'), 4);
  });

  it('rolls out a changed command without a moment of no ready instance, and survives kill -9 of the daemon mid-way', async () => {
    let lowest = Infinity;
    const sampler = setInterval(() => {
      try {
        lowest = Math.min(lowest, readyCount('web'));
      } catch {
        // the state file is being replaced: read again next tick
      }
    }, 100);
    try {
      write('web.yaml', webManifest({ replicas: 4, body: 'v2' }));
      const template = await eventually(async () => e.state().rollouts?.web?.templateHash, 10_000, 'the rollout to start');
      const pid = Number(fs.readFileSync(path.join(e.home, 'converge.pid'), 'utf8'));
      process.kill(pid, 'SIGKILL'); // the daemon this test started
      e.daemon(['--watch', manifests, '--resync', '1s']);
      await eventually(async () => {
        const s = e.state();
        const web = readiness(s, 'web');
        return !s.rollouts?.web && web.length === 4 && web.every((i) => i.ready) ? web : undefined;
      }, 60_000, 'the rollout to finish').catch(async (err: Error) => {
        const s = e.state();
        const instances = (await e.carte(['get', 'instances', '-o', 'wide'])).stdout;
        throw new Error(`${err.message}\nrollouts: ${JSON.stringify(s.rollouts)}\nreadiness: ${JSON.stringify(readiness(s, 'web'))}\n${instances}\nevents:\n${s.events.slice(-12).map((ev) => `${ev.reason} ${ev.message}`).join('\n')}`);
      });
      const list = JSON.parse((await e.carte(['get', 'instances', '-o', 'json'])).stdout) as { items: Array<{ name: string; labels: Record<string, string> }> };
      const web = list.items.filter((i) => i.name.startsWith('web-'));
      assert.equal(web.length, 4, `no duplicates: ${JSON.stringify(web.map((i) => [i.name, (i as unknown as { state: string }).state, i.labels['carte.template']]))}\nreadiness: ${JSON.stringify(readiness(e.state(), 'web'))}\nevents:\n${e.state().events.slice(-14).map((ev) => `${ev.at} ${ev.reason} ${ev.message}`).join('\n')}`);
      assert.ok(web.every((i) => i.labels['carte.template'] === template), 'every instance runs the new template');
    } finally {
      clearInterval(sampler);
    }
    assert.ok(lowest >= 1, `ready instances never dropped to zero (lowest seen: ${lowest})`);
  });

  it('backs off a crash-looping service and says so', async () => {
    write('crash.yaml', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: crash }\nspec:\n  image: e2e/busybox:1\n  command: [sh, -c, "exit 3"]\n');
    await eventually(async () => (readiness(e.state(), 'crash')[0]?.restarts ?? 0) >= 2, 30_000, 'two restarts');
    const status = await eventually(async () => {
      const out = (await e.carte(['status'])).stdout;
      return /\ncrash  +0\/1 +CrashLoopBackOff +crash-1 exited with code 3; restart \d+ in \d+s \(CrashLoopBackOff\)\n/.test(out) ? out : undefined;
    }, 20_000, 'CrashLoopBackOff in carte status');
    assert.ok(status);
    const events = e.state().events.filter((ev) => ev.object === 'service/crash' && ev.reason === 'InstanceRestarted').map((ev) => ev.message);
    assert.equal(events[0], 'crash-1 restarted (1): it exited with code 3');
    assert.equal(readyCount('web'), 4, 'the other service is not disturbed');
    fs.rmSync(path.join(manifests, 'crash.yaml'));
    await eventually(async () => readiness(e.state(), 'crash').length === 0, 20_000, 'the pruned service to go');
  });
});
