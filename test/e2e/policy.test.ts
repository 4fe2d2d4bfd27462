// The server policy end to end: a Git repository of manifests written by
// people who are not root, a daemon started with --policy. A commit that asks
// for a forbidden host folder is refused while the last good commit keeps
// running, and a service that sets no resources runs under the policy's
// default limits (read back from its cgroup).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { eventually, requireRoot } from '../helpers/linux.js';
import { buildBusybox, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { tempDir } from '../helpers/paths.js';

/** The folder of an instance's cgroup in one controller's hierarchy (cgroup v1), or the unified one (v2). */
function cgroupFile(parent: string, instance: string, v1Controller: string, file: string): string {
  const v2 = !fs.existsSync('/sys/fs/cgroup/memory');
  const top = path.join('/sys/fs/cgroup', v2 ? '' : v1Controller, parent);
  // <parent>/<home id>/<instance>
  for (const homeId of fs.readdirSync(top, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    const candidate = path.join(top, homeId.name, instance, file);
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`no cgroup file ${file} for ${instance} under ${top}`);
}

describe('e2e: the server policy on a Git source', function () {
  this.timeout(120_000);
  let e: E2eEnv;
  let remote: GitRemote;
  let policyDir: string;
  let daemon: ChildProcess;
  const commit = (text: string, message: string) => remote.commit(text, message);
  const source = () => remote.source;
  const readyCount = () => readiness(e.state(), 'web').filter((i) => i.ready).length;

  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    await buildBusybox(e);
    remote = makeGitRemote();
    policyDir = tempDir('carte-policy-');
    fs.mkdirSync(path.join(policyDir, 'data'));
  });
  after(async () => {
    await e?.teardown();
    remote?.remove();
    if (policyDir) fs.rmSync(policyDir, { recursive: true, force: true });
  });

  it('a broken policy file: the daemon does not start, and says where', async () => {
    const bad = path.join(policyDir, 'bad.yaml');
    fs.writeFileSync(bad, 'resources:\n  default: { memory: lots }\n');
    const r = await e.carte(['daemon', '--policy', bad]);
    assert.deepEqual(r, {
      code: 2, stdout: '',
      stderr: `${bad}:2:22: resources.default.memory: "lots" is not a memory size (use e.g. 128Mi)\nerror: 1 problem in the server policy ${bad}; it was not used\n`,
    });
  });

  it('a service without resources runs under the policy\'s default limits', async () => {
    const policy = path.join(policyDir, 'policy.yaml');
    fs.writeFileSync(policy, `volumes:\n  hostPaths: [{ path: ${policyDir}/data }]\nresources:\n  default: { cpu: 500m, memory: 96Mi, pids: 128 }\n`);
    commit(webManifest({ replicas: 1 }), 'one web');
    daemon = e.daemon(['--policy', policy, '--git', `file://${remote.repo}`, '--branch', 'main', '--path', 'manifests', '--interval', '1s']);
    await eventually(async () => readyCount() === 1, 30_000, 'one ready instance');
    assert.deepEqual(e.state().services.web!.revision.spec.resources, { cpuMillis: 500, memoryBytes: 96 * 2 ** 20, pids: 128 });
    const [instance] = readiness(e.state(), 'web');
    const parent = e.env.CARTE_CGROUP_PARENT!;
    const memory = fs.existsSync('/sys/fs/cgroup/memory') ? 'memory.limit_in_bytes' : 'memory.max';
    assert.equal(fs.readFileSync(cgroupFile(parent, instance!.name, 'memory', memory), 'utf8').trim(), String(96 * 2 ** 20));
    assert.equal(fs.readFileSync(cgroupFile(parent, instance!.name, 'pids', 'pids.max'), 'utf8').trim(), '128');
  });

  it('a commit with a forbidden host folder is refused; the last good commit keeps running', async () => {
    const good = e.state().services.web!.revision;
    const running = readiness(e.state(), 'web').map((i) => i.name);
    const bad = commit(webManifest({ replicas: 2, extra: '  volumes: [{ hostPath: /etc, mountPath: /host-etc }]\n' }), 'mount /etc');
    await eventually(async () => e.state().sources[source()]?.lastError ?? undefined, 20_000, 'the refusal');
    const message = `manifests/web.yaml:11:25: spec.volumes[0].hostPath: "/etc" is not allowed by the server policy (allowed host paths: ${policyDir}/data (read-only))`;
    assert.equal(e.state().sources[source()]!.lastError, message);
    assert.equal(e.state().events.find((ev) => ev.reason === 'SyncFailed')?.message, `commit ${bad.slice(0, 12)}: ${message}`);
    assert.equal(e.state().services.web!.revision.revision, good.revision);
    assert.deepEqual(readiness(e.state(), 'web').map((i) => i.name), running);
    assert.equal(readyCount(), 1);
  });

  it('an allowed folder is mounted read-only when the manifest does not say', async () => {
    fs.writeFileSync(path.join(policyDir, 'data', 'hello.txt'), 'hi\n');
    commit(webManifest({ replicas: 1, extra: `  volumes: [{ hostPath: ${policyDir}/data, mountPath: /data }]\n` }), 'mount data');
    await eventually(async () => e.state().services.web!.revision.spec.volumes.length === 1 && readyCount() === 1
      && readiness(e.state(), 'web').every((i) => i.ready), 30_000, 'the new revision, ready');
    assert.equal(e.state().sources[source()]!.lastError, null);
    assert.deepEqual(e.state().services.web!.revision.spec.volumes, [{ kind: 'host', hostPath: `${policyDir}/data`, mountPath: '/data', readOnly: true }]);
    await eventually(async () => {
      const names = readiness(e.state(), 'web').filter((i) => i.ready).map((i) => i.name);
      if (names.length !== 1) return undefined;
      const r = await e.carte(['exec', names[0]!, '--', 'sh', '-c', 'cat /data/hello.txt && (echo x > /data/new.txt) 2>&1; true']);
      return r.code === 0 && r.stdout.startsWith('hi\n') ? r.stdout : undefined;
    }, 30_000, 'the mount to be readable');
    assert.equal(fs.existsSync(path.join(policyDir, 'data', 'new.txt')), false, 'the mount is read-only');
  });

  it('a changed policy file is read again: a broken one is refused, a tighter one admits every source again', async () => {
    const policy = path.join(policyDir, 'policy.yaml');
    const running = readiness(e.state(), 'web').map((i) => i.name);
    const kept = e.state().services.web!.revision.revision;
    const after = (reason: string) => e.state().events.filter((ev) => ev.reason === reason);

    // Replaced whole, as an editor saves: the daemon never reads a half-written file here.
    const save = (text: string) => {
      fs.writeFileSync(`${policy}.tmp`, text);
      fs.renameSync(`${policy}.tmp`, policy);
    };
    save('resources:\n  default: { memory: lots }\n');
    await eventually(async () => after('PolicyRefused').length === 1 || undefined, 20_000, 'the broken policy refused');
    assert.equal(after('PolicyRefused')[0]!.message, `1 problem in the server policy ${policy}; it was not used; ${policy}:2:22: resources.default.memory: "lots" is not a memory size (use e.g. 128Mi); the policy in force stays`);

    // No host folder allowed any more: the running web (it mounts one) no longer fits.
    save('resources:\n  default: { cpu: 500m, memory: 96Mi, pids: 128 }\n');
    await eventually(async () => (after('PolicyViolation').length === 1 && e.state().sources[source()]?.lastError) || undefined, 20_000, 'the tighter policy applied');
    const refused = `"${policyDir}/data" is not allowed by the server policy (allowed host paths: none)`;
    assert.equal(after('PolicyReloaded')[0]!.message, `read ${policy}; every source is admitted again under it`);
    assert.deepEqual(after('PolicyViolation').map((ev) => [ev.object, ev.message]), [
      ['service/web', `no longer fits the server policy: spec.volumes[0].hostPath: ${refused}; it keeps running as applied until its manifest changes`],
    ]);
    assert.equal(e.state().sources[source()]!.lastError, `manifests/web.yaml:11:25: spec.volumes[0].hostPath: ${refused}`);
    assert.equal(e.state().services.web!.revision.revision, kept);
    assert.deepEqual(readiness(e.state(), 'web').map((i) => i.name), running);

    // SIGHUP reads it again too (here: nothing changed, so no news), and does not stop the daemon.
    daemon.kill('SIGHUP');
    const r = await e.carte(['get', 'services']);
    assert.equal(r.code, 0);
    assert.equal(daemon.exitCode, null);
    assert.equal(after('PolicyReloaded').length, 1);
  });
});
