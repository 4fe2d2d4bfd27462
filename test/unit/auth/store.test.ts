import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileAuthStore } from '../../../src/auth/store.js';
import { hashPassword, parseHash, verifyHash } from '../../../src/auth/password.js';
import { tokenDigest } from '../../../src/auth/tokens.js';
import { CarteError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/paths.js';

// Cheap scrypt for tests: the cost is a parameter stored with each hash.
const FAST = { N: 1024, r: 8, p: 1 };

async function rejects(p: Promise<unknown>, code: string, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CarteError, String(e));
    assert.equal(e.message, message);
    assert.equal(e.code, code);
    return true;
  });
}

describe('auth store (users.json)', () => {
  let home: string;
  let now: Date;
  let store: FileAuthStore;
  const file = () => path.join(home, 'users.json');

  beforeEach(() => {
    home = tempDir('carte-auth-');
    now = new Date('2026-12-01T10:00:00Z');
    store = new FileAuthStore(home, { scrypt: FAST, now: () => now });
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('starts with no users and no file', async () => {
    assert.equal(await store.hasUsers(), false);
    assert.deepEqual(await store.listUsers(), []);
    assert.equal(fs.existsSync(file()), false);
  });

  it('adds a user: listed, verified by password, file 0600 holding no password', async () => {
    assert.deepEqual(await store.addUser('alice', 'operator', 'correct horse'), { name: 'alice', role: 'operator', createdAt: '2026-12-01T10:00:00.000Z' });
    assert.equal(await store.hasUsers(), true);
    assert.deepEqual(await store.listUsers(), [{ name: 'alice', role: 'operator', createdAt: '2026-12-01T10:00:00.000Z' }]);
    assert.deepEqual(await store.verifyPassword('alice', 'correct horse'), { kind: 'user', name: 'alice', role: 'operator' });
    assert.equal(await store.verifyPassword('alice', 'correct horsE'), null);
    assert.equal(await store.verifyPassword('bob', 'correct horse'), null);
    assert.equal(await store.verifyPassword('alice', 'x'.repeat(1_000_000)), null);
    assert.equal(fs.statSync(file()).mode & 0o777, 0o600);
    const text = fs.readFileSync(file(), 'utf8');
    assert.ok(!text.includes('correct horse'));
    const stored = JSON.parse(text).users[0].hash as string;
    assert.match(stored, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
  });

  it('hashes with a random salt and keeps each hash\'s parameters', async () => {
    const a = await hashPassword('same password', FAST);
    const b = await hashPassword('same password', FAST);
    assert.notEqual(a, b);
    assert.deepEqual(parseHash(a)?.params, FAST);
    assert.equal(await verifyHash('same password', a), true);
    assert.equal(await verifyHash('same password', 'scrypt$3$8$1$AAAA$AAAA'), false); // N not a power of two
  });

  it('the default cost (N = 2^15, r = 8) runs within node\'s memory bound', async () => {
    const h = await hashPassword('a password');
    assert.match(h, /^scrypt\$32768\$8\$1\$/);
    assert.equal(await verifyHash('a password', h), true);
  });

  it('refuses an existing name, a bad name and a bad role, changing nothing', async () => {
    await store.addUser('alice', 'viewer', 'password1');
    const before = fs.readFileSync(file(), 'utf8');
    await rejects(store.addUser('alice', 'admin', 'password2'), 'conflict',
      'user "alice" already exists: to change its password run "carte user passwd alice"; to start over, "carte user rm alice" first');
    await rejects(store.addUser('Bob!', 'viewer', 'password1'), 'usage',
      '"Bob!" is not a valid user name: use 1 to 32 characters, lowercase letters, digits, ".", "_" or "-", starting with a letter');
    await rejects(store.addUser('bob', 'root' as 'admin', 'password1'), 'usage',
      '"root" is not a role: use viewer (sees), operator (also acts) or admin (also manages users and tokens)');
    assert.equal(fs.readFileSync(file(), 'utf8'), before);
  });

  it('the user stamp changes on passwd and is null once removed; old password stops working', async () => {
    await store.addUser('alice', 'admin', 'password1');
    const s1 = await store.userStamp('alice');
    assert.match(s1!, /^[0-9a-f]{32}$/);
    assert.equal(await store.userStamp('alice'), s1);
    await store.setPassword('alice', 'password2');
    const s2 = await store.userStamp('alice');
    assert.notEqual(s2, s1);
    assert.equal(await store.verifyPassword('alice', 'password1'), null);
    assert.deepEqual(await store.verifyPassword('alice', 'password2'), { kind: 'user', name: 'alice', role: 'admin' });
    await store.removeUser('alice');
    assert.equal(await store.userStamp('alice'), null);
    assert.equal(await store.verifyPassword('alice', 'password2'), null);
    await rejects(store.removeUser('alice'), 'not-found', 'no user "alice" (see "carte user list")');
    await rejects(store.setPassword('alice', 'password3'), 'not-found', 'no user "alice" (see "carte user list")');
  });

  it('tokens: shown once, stored as SHA-256 only, verified, expired, removed by id or name', async () => {
    const { row, token } = await store.createToken('ci', 'operator', null);
    assert.match(token, /^carte_[A-Za-z0-9_-]{43}$/);
    assert.match(row.id, /^t[0-9a-f]{8}$/);
    assert.deepEqual(row, { id: row.id, name: 'ci', role: 'operator', createdAt: '2026-12-01T10:00:00.000Z', expiresAt: null });
    const text = fs.readFileSync(file(), 'utf8');
    assert.ok(!text.includes(token.slice(6)));
    assert.equal(JSON.parse(text).tokens[0].sha256, tokenDigest(token));
    assert.deepEqual(await store.verifyToken(token), { kind: 'token', name: 'ci', role: 'operator' });
    assert.equal(await store.verifyToken(token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')), null);
    assert.equal(await store.verifyToken('not a token'), null);

    const short = await store.createToken('short', 'viewer', new Date('2026-12-01T11:00:00Z'));
    assert.deepEqual(await store.verifyToken(short.token), { kind: 'token', name: 'short', role: 'viewer' });
    now = new Date('2026-12-01T11:00:00Z');
    assert.equal(await store.verifyToken(short.token), null);
    assert.deepEqual((await store.listTokens()).map((t) => [t.name, t.expiresAt]), [['ci', null], ['short', '2026-12-01T11:00:00.000Z']]);

    await rejects(store.createToken('ci', 'admin', null), 'conflict', 'a token named "ci" already exists: choose another name, or "carte token rm ci" first');
    await rejects(store.createToken('t0123abcd', 'admin', null), 'usage', '"t0123abcd" is not a valid token name: it looks like a token id (t and 8 hex digits); choose another');
    assert.equal((await store.removeToken(row.id)).name, 'ci');
    assert.equal(await store.verifyToken(token), null);
    assert.equal((await store.removeToken('short')).id, short.row.id);
    await rejects(store.removeToken('short'), 'not-found', 'no token with id or name "short" (see "carte token list")');
  });

  it('a damaged file is an error naming it and what to do, never "no users"', async () => {
    fs.writeFileSync(file(), '{"version": 1, "users": [', { mode: 0o600 });
    const msg = (why: string) => `failed to read ${file()}: ${why}; carte only ever replaces it whole, so it was edited by hand or damaged: ` +
      'restore it from a backup, or move it away and add the users and tokens again ("carte user add", "carte token create")';
    await rejects(store.hasUsers(), 'store-corrupt', msg('it is not valid JSON (Unexpected end of JSON input)'));
    await rejects(store.verifyPassword('a', 'b'), 'store-corrupt', msg('it is not valid JSON (Unexpected end of JSON input)'));
    await rejects(store.addUser('alice', 'admin', 'password1'), 'store-corrupt', msg('it is not valid JSON (Unexpected end of JSON input)'));
    fs.writeFileSync(file(), JSON.stringify({ version: 1, users: [{ name: 'a', role: 'admin', createdAt: 'x', hash: 'plain' }], tokens: [] }));
    await rejects(store.listUsers(), 'store-corrupt', msg('users[0] ("a") has no valid password hash'));
  });

  it('refuses a file open to group or others', async () => {
    await store.addUser('alice', 'admin', 'password1');
    fs.chmodSync(file(), 0o644);
    await rejects(store.hasUsers(), 'store-corrupt',
      `refusing to use ${file()}: it is open to group or others (mode 0644); run "chmod 600 ${file()}" (and think about who may have read its password hashes)`);
  });

  it('concurrent writers lose no change (the lock)', async () => {
    const other = new FileAuthStore(home, { scrypt: FAST });
    await Promise.all([
      ...['a1', 'a2', 'a3'].map((n) => store.addUser(n, 'viewer', 'password1')),
      ...['b1', 'b2', 'b3'].map((n) => other.createToken(n, 'viewer', null)),
    ]);
    assert.deepEqual((await store.listUsers()).map((u) => u.name).sort(), ['a1', 'a2', 'a3']);
    assert.deepEqual((await store.listTokens()).map((t) => t.name).sort(), ['b1', 'b2', 'b3']);
  });
});
