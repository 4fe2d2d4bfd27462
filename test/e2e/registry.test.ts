// Registries end to end, through the CLI and a daemon, against a real
// registry with basic auth on 127.0.0.1: login (wrong, then right; the
// password never on disk in clear, never in argv), push, pull; a service
// whose image is in the registry runs; one whose pull fails gets PullFailed
// events with the registry's error, retried with backoff, while the other
// converges.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { eventually, requireRoot } from '../helpers/linux.js';
import { buildBusybox, makeE2eEnv, readiness, type E2eEnv } from '../helpers/e2e.js';
import { CARTE, filesOnDisk, tempDir } from '../helpers/paths.js';
import { kill9 } from '../helpers/process.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const PASSWORD = 'reg-9d41c7e2b0';

describe('e2e: registries', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let registry: TestRegistry;
  let daemon: ChildProcess | undefined;
  let logDir: string;

  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    await buildBusybox(e);
    registry = await startRegistry({ auth: { user: 'ci', password: PASSWORD } });
    logDir = tempDir('carte-log-');
  });
  after(async () => {
    if (daemon) {
      daemon.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1000));
      await kill9(daemon);
    }
    await e?.teardown();
    await registry?.stop();
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  });

  it('login checks the password with the registry and keeps it encrypted', async () => {
    const wrong = await e.carte(['login', registry.host, '-u', 'ci', '--password-stdin'], { input: 'nope\n' });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, new RegExp(`^error: login ${registry.host}: .*(unauthorized|invalid username/password)`, 'i'));
    assert.equal(fs.existsSync(path.join(e.home, 'registries', 'auth.age')), false);
    const noStdin = await e.carte(['login', registry.host, '-u', 'ci']);
    assert.deepEqual([noStdin.code, noStdin.stderr], [2, 'error: login: give the password with --password-stdin (it is never taken as an argument)\n']);
    const right = await e.carte(['login', registry.host, '-u', 'ci', '--password-stdin'], { input: `${PASSWORD}\n` });
    assert.deepEqual([right.code, right.stdout, right.stderr], [0, `logged in to ${registry.host} as ci (kept encrypted in ${e.home}/registries)\n`, '']);
    assert.equal(fs.statSync(path.join(e.home, 'registries', 'auth.age')).mode & 0o777, 0o600);
  });

  it('push and pull through the CLI, with the stored login', async () => {
    const ref = `${registry.host}/team/app:1`;
    const pushed = await e.carte(['push', 'e2e/busybox:1', ref]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const m = new RegExp(`^pushed e2e/busybox:1 to ${ref} \\(digest (sha256:[0-9a-f]{64})\\)\\n$`).exec(pushed.stdout);
    assert.ok(m, pushed.stdout);
    const pulled = await e.carte(['pull', `${registry.host}/team/app@${m[1]}`]);
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, new RegExp(`^pulled ${registry.host}/team/app@${m[1]} \\(digest ${m[1]}, id [0-9a-f]{12}, [0-9.]+ [KM]iB\\)\\n$`));
    assert.equal(pulled.stderr, '');
    const images = await e.carte(['images']);
    assert.match(images.stdout, new RegExp(`\\n${registry.host.replace(/\./g, '\\.')}/team/app\\s+sha256:[0-9a-f]{64}\\s`));
  });

  it('the daemon pulls a service\'s registry image; a failing pull is PullFailed with backoff while the other converges', async () => {
    const log = fs.openSync(path.join(logDir, 'daemon.log'), 'a');
    daemon = spawn(CARTE, ['daemon', '--log-level', 'info'], { env: e.env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    const dir = tempDir('carte-m-');
    // The image is pulled by the daemon, not found locally: remove the CLI's copy first.
    await e.carte(['rmi', 'e2e/busybox:1']);
    fs.writeFileSync(path.join(dir, 'app.yaml'), `apiVersion: carte/v1
kind: Service
metadata: { name: app }
spec:
  image: ${registry.host}/team/app:1
  pullPolicy: Always
  command: [sh, -c, "exec busybox sleep 100000"]
  stopGracePeriod: 0s
---
apiVersion: carte/v1
kind: Service
metadata: { name: missing }
spec:
  image: ${registry.host}/team/missing:1
  command: [sh, -c, "exec busybox sleep 100000"]
  stopGracePeriod: 0s
`);
    await eventually(async () => fs.existsSync(path.join(e.home, 'carte.sock')) || undefined, 30_000, 'the daemon socket');
    const applied = await e.carte(['apply', '-f', 'app.yaml'], { cwd: dir });
    assert.equal(applied.code, 0, applied.stderr);
    fs.rmSync(dir, { recursive: true, force: true });
    await eventually(async () => readiness(e.state(), 'app').filter((i) => i.ready).length === 1 || undefined, 60_000, 'app ready');
    const failures = () => e.state().events.filter((ev) => ev.object === 'service/missing' && ev.reason === 'PullFailed');
    await eventually(async () => failures().length >= 2 || undefined, 60_000, 'two PullFailed events');
    assert.match(failures()[0]!.message, new RegExp(`^missing-1: pull ${registry.host}/team/missing:1: .*manifest unknown`));
    assert.equal(failures()[0]!.type, 'Warning');
    assert.equal(e.state().services.missing && readiness(e.state(), 'missing').length, 0);
    // The password is nowhere in clear: not in CARTE_HOME's files, not in the daemon's log.
    for (const f of filesOnDisk(e.home)) assert.equal(fs.readFileSync(f).includes(PASSWORD), false, f);
    assert.equal(fs.readFileSync(path.join(logDir, 'daemon.log'), 'utf8').includes(PASSWORD), false);
  });

  it('logout forgets the login; a pull then gets the registry\'s refusal', async () => {
    const out = await e.carte(['logout', registry.host]);
    assert.deepEqual([out.code, out.stdout], [0, `logged out of ${registry.host}\n`]);
    const again = await e.carte(['logout', registry.host]);
    assert.deepEqual([again.code, again.stderr], [1, `error: not logged in to ${registry.host}\n`]);
    const pulled = await e.carte(['pull', `${registry.host}/team/app:1`]);
    assert.equal(pulled.code, 1);
    assert.match(pulled.stderr, /unauthorized|authentication required/i);
  });
});
