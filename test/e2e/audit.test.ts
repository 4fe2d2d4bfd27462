// Who did what: with a daemon running real containers, the CLI's actions
// (a build, an apply, a scale that works and one that fails, user and token
// admin) show up in `carte audit`, with exact columns, failed ones as failed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildBusybox, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { eventually, requireRoot } from '../helpers/linux.js';
import { CARTE, tempDir } from '../helpers/paths.js';
import { run } from '../helpers/process.js';

const TIME = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';

describe('e2e: carte audit lists the CLI\'s actions', function () {
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

  it('scale, a failed scale, user and token admin: each recorded with who, what and the result', async () => {
    e.daemon(['--resync', '1s']);
    await eventually(async () => (await e.carte(['status'])).stdout.startsWith('daemon: running\n'), 20_000, 'the daemon to listen');
    const manifest = path.join(work, 'web.yaml');
    fs.writeFileSync(manifest, webManifest({ replicas: 1 }));
    assert.equal((await e.carte(['apply', '-f', 'web.yaml'], { cwd: work })).code, 0);
    const scaled = await e.carte(['scale', 'web', '--replicas', '2', '--wait']);
    assert.deepEqual([scaled.code, scaled.stdout], [0, 'service/web scaled 1 → 2\n'], scaled.stderr);
    assert.equal(readiness(e.state(), 'web').filter((i) => i.ready).length, 2);
    assert.deepEqual(await e.carte(['scale', 'nope', '--replicas', '2']), { code: 1, stdout: '', stderr: 'error: service "nope" not found\n' });
    // Through sudo, the audit names the person, not just root.
    const viaSudo = await run(CARTE, ['user', 'add', 'alice', '--role', 'operator'], { env: { ...e.env, SUDO_USER: 'dave' }, input: 'a long password\n' });
    assert.deepEqual(viaSudo, { code: 0, stdout: 'user/alice created (role operator)\n', stderr: '' });
    const token = await e.carte(['token', 'create', '--name', 'ci', '--role', 'viewer', '--expires', '1d']);
    assert.equal(token.code, 0, token.stderr);
    await e.carte(['get']); // reads are not recorded

    const r = await e.carte(['audit']);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp('^' + [
      'TIME                   WHO         VIA   ACTION         TARGET                RESULT   DETAIL',
      `${TIME}   root/root   cli   build          image/e2e/busybox:1   ok       -`,
      `${TIME}   root/root   cli   apply          -f web.yaml           ok       -`,
      `${TIME}   root/root   cli   scale          service/web           ok       replicas 2`,
      `${TIME}   root/root   cli   scale          service/nope          failed   service "nope" not found`,
      `${TIME}   root/dave   cli   user.add       user/alice            ok       role operator`,
      `${TIME}   root/root   cli   token.create   token/ci              ok       role viewer, expires in 1d`,
    ].join('\n') + '\n$'));
    const raw = fs.readFileSync(path.join(e.home, 'audit.log'), 'utf8');
    assert.ok(!raw.includes('a long password') && !raw.includes(token.stdout.trim()));
    assert.equal(fs.statSync(path.join(e.home, 'audit.log')).mode & 0o777, 0o600);
  });
});
