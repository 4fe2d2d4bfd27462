// Fault injection against a real daemon and real containers: one bad
// service, one bad file or one slow step never holds the rest hostage.
//   - a health endpoint that accepts and never answers, beside a healthy
//     service that must heal and scale meanwhile;
//   - an exec probe that never ends (at most one probe process per instance,
//     and its output never in the daemon's log);
//   - a service that ignores SIGTERM with a 1 h grace, beside one being scaled;
//   - SIGTERM to the daemon during a rollout and a hung probe;
//   - a state file damaged under the daemon while a published port serves.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { takeConvergeLock } from '../../src/daemon/daemon.js';
import { homeIdOf } from '../../src/drivers/linux/records.js';
import { buildBusybox, damageState, hangingManifest, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { eventually, requireRoot } from '../helpers/linux.js';
import { CARTE, tempDir } from '../helpers/paths.js';

/** A TCP port free on 127.0.0.1 now. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function httpGet(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

describe('e2e: faults never hold the rest hostage', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let dir: string;
  let daemon: ChildProcess | null = null;
  let daemonOutput = '';

  /** The daemon, with its log (stdout) and stderr kept for the test to read. */
  const startDaemon = () => {
    daemonOutput = '';
    const child = spawn(CARTE, ['daemon', '--log-level', 'info', '--watch', dir, '--resync', '1s', '--publish-address', '127.0.0.1'], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (daemonOutput += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (daemonOutput += d.toString()));
    daemon = child;
    return child;
  };
  const stopDaemon = async (): Promise<{ ms: number; code: number | null }> => {
    const child = daemon!;
    const started = Date.now();
    const exited = new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
    child.kill('SIGTERM'); // the daemon this test started
    const code = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return { ms: Date.now() - started, code };
  };
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  const ready = (service: string) => readiness(e.state(), service).filter((i) => i.ready).length;
  const instances = async () => {
    const r = await e.carte(['get', 'instances', '-o', 'json']);
    return (JSON.parse(r.stdout) as { items: Array<{ name: string; state: string; pid: number | null; labels: Record<string, string> }> }).items;
  };

  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    dir = tempDir('carte-faults-');
    await buildBusybox(e);
  });
  after(async () => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
    await e?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a probe that never answers holds up nothing: a killed instance of another service heals, a new service starts', async () => {
    write('hang.yaml', hangingManifest('hang'));
    write('good.yaml', webManifest({ name: 'good', replicas: 2 }));
    startDaemon();
    await eventually(async () => ready('good') === 2, 30_000, 'good ready');
    await eventually(async () => (await instances()).some((i) => i.name === 'hang-1' && i.state === 'running'), 20_000, 'hang running');
    const victim = (await instances()).find((i) => i.name === 'good-1')!;
    const killedAt = Date.now();
    process.kill(victim.pid!, 'SIGKILL'); // the container's pid 1, started by this test's daemon
    write('later.yaml', webManifest({ name: 'later', replicas: 1 }));
    await eventually(async () => readiness(e.state(), 'good').find((i) => i.name === 'good-1' && i.restarts === 1 && i.ready), 20_000, 'good-1 healed');
    const healMs = Date.now() - killedAt;
    await eventually(async () => ready('later') === 1, 20_000, 'the new service ready');
    console.log(`      (healed in ${healMs} ms while hang-1's probe hangs)`);
    assert.equal(ready('hang'), 0, 'the hanging instance is not ready');
    assert.equal(readiness(e.state(), 'hang')[0]?.restarts, 0, 'and not restarted: its check has not failed, only not answered yet');
  });

  it('an exec probe that never ends: at most one probe process per instance, its output never in the daemon log', async () => {
    write('probe.yaml', `apiVersion: carte/v1
kind: Service
metadata: { name: probe }
spec:
  image: e2e/busybox:1
  command: [busybox, sleep, "100000"]
  health: { exec: { command: [sh, -c, "echo PROBE-OUTPUT-MARKER; echo PROBE-ERROR-MARKER >&2; exec busybox sleep 1000"] }, interval: 1s, timeout: 1s, failureThreshold: 100 }
  stopGracePeriod: 0s
`);
    // A probe that daemonizes a child (setsid, its stdio closed) and exits 0 at once.
    write('forker.yaml', `apiVersion: carte/v1
kind: Service
metadata: { name: forker }
spec:
  image: e2e/busybox:1
  command: [busybox, sleep, "100000"]
  health: { exec: { command: [sh, -c, "busybox setsid busybox sleep 100005 </dev/null >/dev/null 2>&1 & busybox sleep 100006 & exit 0"] }, interval: 1s, timeout: 1s }
  stopGracePeriod: 0s
`);
    await eventually(async () => (await instances()).filter((i) => ['probe-1', 'forker-1'].includes(i.name) && i.state === 'running').length === 2, 20_000, 'probe-1 and forker-1 running');
    // Live processes of the instance, probe sub-cgroups included (cgroup.procs lists no zombies:
    // a killed orphan whose parent, the image's pid 1, never reaps stays a zombie, as with Docker).
    const count = (instance: string): number => {
      const walk = (dir: string): number => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).length +
        fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).reduce((n, d) => n + walk(path.join(dir, d.name)), 0);
      try {
        return walk(`/sys/fs/cgroup/pids${e.env.CARTE_CGROUP_PARENT}/${homeIdOf(e.home)}/${instance}`);
      } catch {
        return 0; // a sub-cgroup removed while walked
      }
    };
    let most = 0;
    let mostForker = 0;
    for (let i = 0; i < 60; i++) {
      most = Math.max(most, count('probe-1'));
      mostForker = Math.max(mostForker, count('forker-1'));
      await new Promise((r) => setTimeout(r, 100));
    }
    // pid 1 (sleep), and at most one probe: its sh exec'd into sleep, so one process.
    assert.ok(most <= 2, `at most 2 processes in probe-1's cgroup at any sample (saw ${most})`);
    // pid 1, and the probe's sh with its two children while it runs: nothing piles up.
    assert.ok(mostForker <= 4, `at most 4 processes in forker-1's cgroup at any sample (saw ${mostForker})`);
    assert.equal(ready('forker'), 1, 'the daemonizing probe passes');
    assert.match(JSON.stringify(e.state().instances['probe-1']), /"lastError":"timed out after 1000 ms"/);
    assert.equal(daemonOutput.includes('PROBE-OUTPUT-MARKER'), false, 'probe stdout not in the daemon log');
    assert.equal(daemonOutput.includes('PROBE-ERROR-MARKER'), false, 'probe stderr not in the daemon log');
  });

  it('a service that ignores SIGTERM with a 1 h grace holds up nothing while it stops', async () => {
    write('stubborn.yaml', `apiVersion: carte/v1
kind: Service
metadata: { name: stubborn }
spec:
  image: e2e/busybox:1
  command: [sh, -c, "trap 'echo ignoring TERM' TERM; while true; do sleep 1; done"]
  replicas: 2
  stopGracePeriod: 1h
`);
    await eventually(async () => ready('stubborn') === 2, 20_000, 'stubborn running');
    write('stubborn.yaml', fs.readFileSync(path.join(dir, 'stubborn.yaml'), 'utf8').replace('replicas: 2', 'replicas: 0'));
    write('good.yaml', webManifest({ name: 'good', replicas: 4 }));
    await eventually(async () => ready('good') === 4, 30_000, 'good scaled to 4 while stubborn stops');
    const stubborn = (await instances()).filter((i) => i.name.startsWith('stubborn-') && i.state === 'running');
    assert.equal(stubborn.length, 2, 'the stubborn instances are still in their grace period');
    // Deleting the file removes the service: its instances still get their grace; the test's teardown ends them.
  });

  it('SIGTERM during a rollout and a hung probe: the daemon exits within 5 s; after a restart nothing is lost', async () => {
    write('good.yaml', webManifest({ name: 'good', replicas: 4, body: 'v2' }));
    await eventually(async () => e.state().rollouts?.good, 20_000, 'the rollout to start');
    const before = await instances();
    const { ms, code } = await stopDaemon();
    console.log(`      (daemon exited ${ms} ms after SIGTERM, code ${code})`);
    assert.equal(code, 0, daemonOutput.split('\n').slice(-20).join('\n'));
    assert.ok(ms < 5000, `exited within 5 s (took ${ms} ms)`);
    const after = await instances();
    const runningBefore = before.filter((i) => i.state === 'running' && !i.name.startsWith('good-')).map((i) => i.name);
    for (const name of runningBefore) assert.ok(after.some((i) => i.name === name && i.state === 'running'), `${name} still runs`);
    startDaemon();
    await eventually(async () => {
      const s = e.state();
      const good = readiness(s, 'good');
      return !s.rollouts?.good && good.length === 4 && good.every((i) => i.ready);
    }, 60_000, 'the rollout to finish after the restart');
    const hang = (await instances()).find((i) => i.name === 'hang-1');
    assert.equal(hang?.state, 'running');
    assert.equal(hang?.labels['carte.restarts'], '0', 'the hung-probe instance was left alone');
  });

  it('a state file damaged under the daemon: the published port keeps serving, the state is recovered', async () => {
    const port = await freePort();
    write('pub.yaml', webManifest({ name: 'pub', replicas: 1, extra: `  ports: [{ name: http, port: 8080, publish: ${port} }]\n` }).replace('  ports: [{ name: http, port: 8080 }]\n', ''));
    await eventually(async () => (await httpGet(port)) === 200, 30_000, 'the published port to answer');
    let failures = 0;
    let requests = 0;
    let sampling = true;
    const loop = (async () => {
      while (sampling) {
        requests++;
        if ((await httpGet(port)) !== 200) failures++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await damageState(e.home, '{"version": 1, "services": {"pub": ');
      await eventually(async () => {
        try {
          return e.state().recovery;
        } catch {
          return undefined;
        }
      }, 20_000, 'the daemon to recover the state');
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      sampling = false;
      await loop;
    }
    assert.equal(failures, 0, `every one of ${requests} requests was answered`);
    const status = await e.carte(['status']);
    assert.match(status.stdout, /\nstate: recovered at \S+ \(.* ago\) from generation \d+: state\.json was not valid JSON/);
    assert.equal((await e.carte(['state', 'verify'])).code, 0);
  });
});

describe('e2e: without a daemon, one converge at a time', function () {
  this.timeout(60_000);
  let e: E2eEnv;
  let dir: string;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    dir = tempDir('carte-lock-');
    await buildBusybox(e);
  });
  after(async () => {
    await e?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a command that finds another converging stores its change, says so, and does not fail', async () => {
    const lock = await takeConvergeLock(e.home); // as a long converge would hold it (this test's pid)
    try {
      const file = path.join(dir, 'web.yaml');
      fs.writeFileSync(file, webManifest({ name: 'web', replicas: 1 }));
      const r = await e.carte(['apply', '-f', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'service/web created\n');
      assert.match(r.stderr, new RegExp(`stored; not converged now: another carte process \\(pid ${process.pid}: a daemon, or a carte apply converging\\) holds .*converge\\.lock; only one may converge CARTE_HOME at a time\\. Run the command again when it is done, or run "carte daemon"`));
      assert.equal(e.state().services.web?.revision.spec.replicas, 1);
    } finally {
      await lock.release();
    }
    const again = await e.carte(['apply', '-f', path.join(dir, 'web.yaml'), '--wait', '--timeout', '30s']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(readiness(e.state(), 'web').map((i) => [i.name, i.ready]), [['web-1', true]]);
  });
});
