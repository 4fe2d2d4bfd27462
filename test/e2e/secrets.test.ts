// Secrets end to end, through the CLI and a daemon: a value set with `carte
// secret set` reaches a service by env and by file, is never in state,
// events, `get -o yaml`, `describe`, the daemon's log or any file of
// CARTE_HOME; a new value rolls the service; a SealedSecret committed to Git
// is applied, and a tampered one is refused at its line while the last good
// set keeps running.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { eventually, requireRoot } from '../helpers/linux.js';
import { buildBusybox, makeE2eEnv, readiness, type E2eEnv } from '../helpers/e2e.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { CARTE, filesOnDisk, tempDir } from '../helpers/paths.js';
import { kill9 } from '../helpers/process.js';

const V1 = 'first-8c1e5a55d0';
const V2 = 'second-4b7f0e9a21';
const V3 = 'sealed-77d2c4e1f3';

const appManifest = `apiVersion: carte/v1
kind: Service
metadata: { name: app }
spec:
  image: e2e/busybox:1
  command: [sh, -c, "exec busybox sleep 100000"]
  user: "10001:10001"
  env:
    PLAIN: hello
    TOKEN: { secret: metaverse, key: token }
  secrets:
    - { name: metaverse, mountPath: /run/secrets/metaverse }
  stopGracePeriod: 0s
`;

const webManifest = (sealed: string) => `${sealed}---
apiVersion: carte/v1
kind: Service
metadata: { name: web }
spec:
  image: e2e/busybox:1
  command: [sh, -c, "exec busybox sleep 100000"]
  env: { PASSWORD: { secret: gitsecret, key: password } }
  stopGracePeriod: 0s
`;


describe('e2e: secrets', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let remote: GitRemote;
  let daemon: ChildProcess | undefined;
  let logDir: string;
  /** The daemon's log (pino JSON on its stdout, stderr beside it), as a service manager would keep it. */
  const daemonLog = () => fs.readFileSync(path.join(logDir, 'daemon.log'), 'utf8');
  let sealedGood = '';

  const running = (service: string) => readiness(e.state(), service).filter((i) => i.ready).map((i) => i.name);
  const sh = async (instance: string, script: string) => {
    const r = await e.carte(['exec', instance, '--', 'sh', '-c', script]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    await buildBusybox(e);
    remote = makeGitRemote();
    logDir = tempDir('carte-log-');
  });
  after(async () => {
    if (daemon) {
      daemon.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 1000));
      await kill9(daemon);
    }
    await e?.teardown();
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
    remote?.remove();
  });

  it('set: stores the secret encrypted, with the key file made root-only outside the home', async () => {
    const set = await e.carte(['secret', 'set', 'metaverse', '--from-literal', `token=${V1}`]);
    assert.deepEqual([set.code, set.stdout, set.stderr], [0, 'secret/metaverse created\n', '']);
    assert.equal(fs.statSync(e.env.CARTE_SECRET_KEY!).mode & 0o777, 0o600);
    assert.deepEqual(e.state().secrets?.metaverse?.keys, ['token']);
    const list = await e.carte(['secret', 'list']);
    assert.match(list.stdout, /^NAME\s+KEYS\s+SOURCE\s+USABLE BY\s+UPDATED\s+USED BY\nmetaverse\s+token\s+cli\s+cli\s+\d+s\s+<none>\n$/);
    assert.deepEqual((await e.carte(['secret', 'get', 'metaverse', '--keys'])).stdout, 'token\n');
  });

  it('apply: a reference to a secret that does not exist is refused at its line, nothing stored', async () => {
    const dir = tempDir('carte-m-');
    fs.writeFileSync(path.join(dir, 'app.yaml'), appManifest.replace('key: token', 'key: tokn'));
    const r = await e.carte(['apply', '-f', 'app.yaml'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'app.yaml:10:38: spec.env.TOKEN.key: secret "metaverse" has no key "tokn" (its keys: token; set it again with every key: carte secret set metaverse --from-literal token=... --from-literal tokn=...)\n'
      + 'error: 1 problem in manifests; nothing was applied\n');
    assert.equal(e.state().services.app, undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a service sees the value by env and by file (0400, its user\'s), with the daemon running', async () => {
    const key = (await e.carte(['secret', 'public-key'])).stdout.trim();
    const seal = await e.carte(['secret', 'seal', 'gitsecret', '--from-literal', `password=${V3}`, '--public-key', key]);
    assert.equal(seal.code, 0, seal.stderr);
    sealedGood = seal.stdout;
    remote.commit(webManifest(sealedGood), 'web with a sealed secret');
    const log = fs.openSync(path.join(logDir, 'daemon.log'), 'a');
    daemon = spawn(CARTE, ['daemon', '--log-level', 'debug', '--git', `file://${remote.repo}`, '--branch', 'main', '--path', 'manifests', '--interval', '1s'], { env: e.env, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    // The daemon is up (and applies what the CLI stores) once its Git source has synced.
    await eventually(async () => e.state().sources[remote.source]?.lastSync ?? undefined, 30_000, 'the first Git sync');
    const dir = tempDir('carte-m-');
    fs.writeFileSync(path.join(dir, 'app.yaml'), appManifest);
    const applied = await e.carte(['apply', '-f', 'app.yaml'], { cwd: dir });
    assert.deepEqual([applied.code, applied.stdout], [0, 'service/app created\n'], applied.stderr);
    fs.rmSync(dir, { recursive: true, force: true });
    await eventually(async () => running('app').length === 1, 30_000, 'app ready');
    assert.equal(await sh('app-1', 'echo "$TOKEN $PLAIN"; cat /run/secrets/metaverse/token; echo; busybox stat -c "%a %u" /run/secrets/metaverse/token'), `${V1} hello\n${V1}\n400 10001\n`);
  });

  it('a SealedSecret committed to Git is opened and applied with the service that uses it', async () => {
    await eventually(async () => running('web').length === 1, 30_000, 'web ready');
    assert.equal(await sh('web-1', 'echo "$PASSWORD"'), `${V3}\n`);
    assert.equal(e.state().secrets?.gitsecret?.source, remote.source);
    assert.equal(e.state().secrets?.gitsecret?.origin, 'manifests/web.yaml:4:9');
  });

  it('a new value rolls the service: its new instance sees it; the event names the secret, not the value', async () => {
    const before = e.state().services.app!.revision.revision;
    const set = await e.carte(['secret', 'set', 'metaverse', '--from-literal', `token=${V2}`]);
    assert.deepEqual([set.code, set.stdout], [0, 'secret/metaverse updated\nservice/app rolling: secret metaverse changed\n'], set.stderr);
    assert.equal(e.state().services.app!.revision.revision, before + 1);
    await eventually(async () => {
      const names = running('app');
      if (names.length !== 1) return false;
      const r = await e.carte(['exec', names[0]!, '--', 'sh', '-c', 'echo "$TOKEN"; cat /run/secrets/metaverse/token']);
      return r.stdout === `${V2}\n${V2}` || undefined;
    }, 30_000, 'the new value in a new instance');
    const events = (await e.carte(['events', '--limit', '200'])).stdout;
    assert.match(events, /secret\/metaverse\s+Updated\s+updated by cli \(keys changed: token\); rolling service\/app/);
    assert.match(events, /service\/app\s+SecretChanged\s+revision \d+: secret metaverse changed; every instance is replaced, one by one/);
    // The same value again changes nothing.
    assert.equal((await e.carte(['secret', 'set', 'metaverse', '--from-literal', `token=${V2}`])).stdout, 'secret/metaverse unchanged\n');
  });

  it('a tampered SealedSecret is refused at its line; the last good set keeps running', async () => {
    const digest = e.state().secrets!.gitsecret!.digest;
    const lines = sealedGood.split('\n');
    const i = lines.findIndex((l) => l.includes('-----END AGE')) - 1;
    lines[i] = lines[i]!.replace(/[A-Za-z]/, (c) => (c === 'A' ? 'B' : 'A'));
    remote.commit(webManifest(lines.join('\n')), 'tampered');
    const error = await eventually(async () => e.state().sources[remote.source]?.lastError ?? undefined, 20_000, 'the refusal');
    assert.equal(error, 'manifests/web.yaml:7:15: spec.data.password: is not a value sealed by "carte secret seal", or was changed after sealing (seal it again: carte secret seal gitsecret)');
    assert.equal(e.state().secrets!.gitsecret!.digest, digest);
    assert.deepEqual(running('web'), ['web-1']);
    assert.equal(await sh('web-1', 'echo "$PASSWORD"'), `${V3}\n`);
  });

  it('rm is refused while a service uses the secret', async () => {
    const r = await e.carte(['secret', 'rm', 'metaverse']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', 'error: secret "metaverse" is used by service app (env TOKEN, volume /run/secrets/metaverse): change that service first, or add --force (its new instances will then fail to start)\n']);
  });

  it('no value is in state.json, its generations, events, get -o yaml, describe, the daemon log, or any file of CARTE_HOME', async () => {
    const outputs = await Promise.all([
      e.carte(['events', '--limit', '1000']), e.carte(['get', '-o', 'yaml']), e.carte(['describe', 'app']), e.carte(['describe', 'web']),
      e.carte(['secret', 'list']), e.carte(['status']),
    ]);
    const yaml = outputs[1]!.stdout;
    assert.match(yaml, /TOKEN:\n\s+secret: metaverse\n\s+key: token/);
    const logged = daemonLog();
    assert.match(logged, /"msg":"git synced"/);
    assert.match(logged, /"msg":"create phase"/, 'the daemon logged at debug level');
    for (const value of [V1, V2, V3]) {
      for (const o of outputs) assert.ok(!o.stdout.includes(value) && !o.stderr.includes(value), `${value} printed`);
      assert.ok(!logged.includes(value), `${value} in the daemon log`);
      const files = filesOnDisk(e.home).filter((f) => fs.readFileSync(f).includes(value));
      assert.deepEqual(files, [], `${value} on disk`);
    }
    assert.ok(filesOnDisk(e.home).some((f) => f.endsWith('state.json')));
  });
});
