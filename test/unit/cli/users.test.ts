import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileAuthStore } from '../../../src/auth/store.js';
import { carte } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/paths.js';

const TIME = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';

describe('carte user, token, audit', function () {
  this.timeout(30_000);
  let home: string;
  const c = (args: string[], input = '') => carte(home, args, { input });

  beforeEach(() => {
    home = tempDir('carte-home-');
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('user add: a piped password, or a generated one shown once; list; refuses an existing name', async () => {
    assert.deepEqual(await c(['user', 'add', 'alice', '--role', 'operator'], 'correct horse battery\n'),
      { code: 0, stdout: 'user/alice created (role operator)\n', stderr: '' });
    const gen = await c(['user', 'add', 'bob', '--role', 'viewer']);
    assert.equal(gen.code, 0);
    const m = /^user\/bob created \(role viewer\)\npassword: ([A-Za-z0-9_-]{24})\n\(generated; shown only now: give it to the user, who can change it with "carte user passwd"\)\n$/.exec(gen.stdout);
    assert.ok(m, gen.stdout);
    const store = new FileAuthStore(home);
    assert.deepEqual(await store.verifyPassword('alice', 'correct horse battery'), { kind: 'user', name: 'alice', role: 'operator' });
    assert.deepEqual(await store.verifyPassword('bob', m[1]!), { kind: 'user', name: 'bob', role: 'viewer' });
    assert.ok(!fs.readFileSync(path.join(home, 'users.json'), 'utf8').includes(m[1]!));

    const list = await c(['user', 'list']);
    assert.match(list.stdout, new RegExp(`^NAME    ROLE       CREATED\nalice   operator   ${TIME}\nbob     viewer     ${TIME}\n$`));
    assert.deepEqual(JSON.parse((await c(['user', 'list', '-o', 'json'])).stdout).items.map((u: { name: string }) => u.name), ['alice', 'bob']);
    assert.deepEqual(await c(['user', 'add', 'alice', '--role', 'admin'], 'another password'), {
      code: 1, stdout: '', stderr: 'error: user "alice" already exists: to change its password run "carte user passwd alice"; to start over, "carte user rm alice" first\n',
    });
  });

  it('bad input: a clear error, exit 2, nothing stored', async () => {
    const bad = async (args: string[], stderr: string, input = '') => assert.deepEqual(await c(args, input), { code: 2, stdout: '', stderr: `error: ${stderr}\n` });
    await bad(['user', 'add', 'Alice', '--role', 'admin'], '"Alice" is not a valid user name: use 1 to 32 characters, lowercase letters, digits, ".", "_" or "-", starting with a letter');
    await bad(['user', 'add', 'alice', '--role', 'root'], '"root" is not a role: use viewer (sees), operator (also acts) or admin (also manages users and tokens)');
    await bad(['user', 'add', 'alice'], 'user add: give --role viewer, operator or admin');
    await bad(['user', 'add', 'alice', '--role', 'admin'], 'the password is too short: use at least 8 characters (or pipe nothing in to have one generated)', 'short\n');
    await bad(['user', 'add', 'alice', '--role', 'admin'], 'the password is too long: use at most 1024 bytes', 'x'.repeat(5000));
    await bad(['token', 'create', '--name', 'ci', '--role', 'admin', '--expires', 'soon'], '--expires: "soon" is not a duration (use e.g. 12h, 30d or 365d)');
    await bad(['token', 'create', '--role', 'admin'], 'token create: give --name NAME (what the token is for, e.g. ci)');
    await bad(['audit', '--limit', '0'], 'audit: --limit takes a whole number above 0, got "0"');
    assert.equal(fs.existsSync(path.join(home, 'users.json')), false);
    assert.deepEqual(await c(['user', 'list']), { code: 0, stdout: '', stderr: 'no users (add one with "carte user add NAME --role admin")\n' });
  });

  it('user passwd and rm', async () => {
    await c(['user', 'add', 'alice', '--role', 'admin'], 'first password');
    const store = new FileAuthStore(home);
    const stamp = await store.userStamp('alice');
    assert.deepEqual(await c(['user', 'passwd', 'alice'], 'second password\n'),
      { code: 0, stdout: 'user/alice password changed (their dashboard sessions end at their next request)\n', stderr: '' });
    assert.notEqual(await store.userStamp('alice'), stamp);
    assert.equal(await store.verifyPassword('alice', 'first password'), null);
    assert.ok(await store.verifyPassword('alice', 'second password'));
    assert.deepEqual(await c(['user', 'passwd', 'nobody'], 'some password'), { code: 1, stdout: '', stderr: 'error: no user "nobody" (see "carte user list")\n' });
    assert.deepEqual(await c(['user', 'rm', 'alice']), { code: 0, stdout: 'user/alice removed (their dashboard sessions end at their next request)\n', stderr: '' });
    assert.equal(await store.userStamp('alice'), null);
    assert.deepEqual(await c(['user', 'rm', 'alice']), { code: 1, stdout: '', stderr: 'error: no user "alice" (see "carte user list")\n' });
  });

  it('token create prints the token once (alone on stdout); list; rm by id or name', async () => {
    const r = await c(['token', 'create', '--name', 'ci', '--role', 'operator', '--expires', '30d']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^carte_[A-Za-z0-9_-]{43}\n$/);
    const m = new RegExp(`^token/ci created \\(id (t[0-9a-f]{8}), role operator, expires ${TIME}\\); it is shown only now: store it \\(send it as "Authorization: Bearer <token>"\\)\n$`).exec(r.stderr);
    assert.ok(m, r.stderr);
    const token = r.stdout.trim();
    assert.deepEqual(await new FileAuthStore(home).verifyToken(token), { kind: 'token', name: 'ci', role: 'operator' });
    assert.ok(!fs.readFileSync(path.join(home, 'users.json'), 'utf8').includes(token));
    await c(['token', 'create', '--name', 'deploy', '--role', 'admin']);
    const list = await c(['token', 'list']);
    assert.match(list.stdout, new RegExp(`^ID          NAME     ROLE       CREATED                EXPIRES\n${m[1]}   ci       operator   ${TIME}   ${TIME}\nt[0-9a-f]{8}   deploy   admin      ${TIME}   never\n$`));
    assert.deepEqual(await c(['token', 'rm', m[1]!]), { code: 0, stdout: `token/ci removed (id ${m[1]})\n`, stderr: '' });
    assert.equal(await new FileAuthStore(home).verifyToken(token), null);
    assert.equal((await c(['token', 'rm', 'deploy'])).code, 0);
    assert.deepEqual(await c(['token', 'list']), { code: 0, stdout: '', stderr: 'no tokens (make one with "carte token create --name NAME --role ROLE")\n' });
  });

  it('audit lists the admin actions, failed ones as failed, never a password or token', async () => {
    assert.deepEqual(await c(['audit']), { code: 0, stdout: '', stderr: 'no audit entries\n' });
    await c(['user', 'add', 'alice', '--role', 'operator'], 'a secret password');
    await c(['user', 'add', 'alice', '--role', 'operator'], 'a secret password');
    await c(['user', 'passwd', 'alice'], 'another secret password');
    const token = (await c(['token', 'create', '--name', 'ci', '--role', 'viewer'])).stdout.trim();
    await c(['token', 'rm', 'ci']);
    await c(['user', 'rm', 'alice']);
    await c(['user', 'list']);
    const r = await c(['audit']);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp('^' + [
      'TIME                   WHO         VIA   ACTION         TARGET       RESULT   DETAIL',
      `${TIME}   root/root   cli   user.add       user/alice   ok       role operator`,
      `${TIME}   root/root   cli   user.add       user/alice   failed   user "alice" already exists: to change its password run "carte user passwd alice"; to start over, "carte user rm alice" first`,
      `${TIME}   root/root   cli   user.passwd    user/alice   ok       -`,
      `${TIME}   root/root   cli   token.create   token/ci     ok       role viewer`,
      `${TIME}   root/root   cli   token.rm       token/ci     ok       -`,
      `${TIME}   root/root   cli   user.rm        user/alice   ok       -`,
    ].join('\n') + '\n$'));
    const raw = fs.readFileSync(path.join(home, 'audit.log'), 'utf8');
    for (const secret of ['a secret password', 'another secret password', token]) assert.ok(!raw.includes(secret), secret);
    const json = JSON.parse((await c(['audit', '--limit', '2', '-o', 'json'])).stdout);
    assert.deepEqual(json.items.map((e: { action: string }) => e.action), ['token.rm', 'user.rm']);
  });

  it('a failing audit write warns and does not fail the command', async () => {
    fs.mkdirSync(path.join(home, 'audit.log'));
    const r = await c(['user', 'add', 'alice', '--role', 'viewer'], 'a password here');
    assert.deepEqual(r, {
      code: 0,
      stdout: 'user/alice created (role viewer)\n',
      stderr: `warning: the audit log did not record this command: failed to write the audit log ${path.join(home, 'audit.log')}: EISDIR: illegal operation on a directory, open '${path.join(home, 'audit.log')}'\n`,
    });
  });
});
