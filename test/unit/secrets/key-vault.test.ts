import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadSecretKey } from '../../../src/secrets/key.js';
import { sameValues, SecretVault } from '../../../src/secrets/vault.js';
import { tempDir } from '../../helpers/paths.js';

const uid = process.getuid?.() ?? 0;

describe('secrets: the server key and the encrypted store', () => {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('carte-key-');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('makes the key on first use, mode 0600 in a 0700 folder, in age-keygen\'s format, and reads the same key again', async () => {
    const file = path.join(dir, 'etc', 'secret.key');
    const k = await loadSecretKey(file, { create: true, ownerUid: uid });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^# created: .*\n# public key: age1[a-z0-9]{58}\nAGE-SECRET-KEY-1[A-Z0-9]{58}\n$/);
    assert.match(k.recipient, /^age1/);
    assert.deepEqual(await loadSecretKey(file, { ownerUid: uid }), k);
  });

  it('refuses a key file others may read, one root does not own, a link, and a missing one without create', async () => {
    const file = path.join(dir, 'secret.key');
    await loadSecretKey(file, { create: true, ownerUid: uid });
    fs.chmodSync(file, 0o644);
    await assert.rejects(loadSecretKey(file, { ownerUid: uid }), {
      message: `secret key ${file} is open to group or others (mode 0644): refusing to use it (chmod 600 ${file}, and think about who may have read it)`,
    });
    fs.chmodSync(file, 0o600);
    await assert.rejects(loadSecretKey(file, { ownerUid: uid + 1 }), {
      message: `secret key ${file} is owned by uid ${uid}, not uid ${uid + 1}: refusing to use it (chown root:root ${file})`,
    });
    if (uid === 0) {
      fs.chownSync(file, 65534, 65534);
      await assert.rejects(loadSecretKey(file), { message: `secret key ${file} is owned by uid 65534, not root: refusing to use it (chown root:root ${file})` });
    }
    const link = path.join(dir, 'link.key');
    fs.symlinkSync(file, link);
    await assert.rejects(loadSecretKey(link, { ownerUid: uid }), {
      message: `secret key ${link} is a symbolic link: carte reads the key only from a regular file (copy it there, mode 0600)`,
    });
    await assert.rejects(loadSecretKey(path.join(dir, 'none.key'), { ownerUid: uid }), {
      message: `no secret key at ${path.join(dir, 'none.key')}: "carte secret set" makes one on first use (or point --secret-key or CARTE_SECRET_KEY at yours)`,
    });
    fs.writeFileSync(path.join(dir, 'bad.key'), '# nothing\nAGE-SECRET-KEY-1NOPE\n', { mode: 0o600 });
    await assert.rejects(loadSecretKey(path.join(dir, 'bad.key'), { ownerUid: uid }), {
      message: `secret key ${path.join(dir, 'bad.key')}: line 2 is not an age private key (AGE-SECRET-KEY-1…)`,
    });
  });

  it('stores versions encrypted (no value in any file), reads them back, and prunes what no state names', async function () {
    if (uid !== 0) this.skip(); // the vault's key must be root's
    const home = path.join(dir, 'home');
    const vault = new SecretVault(home, path.join(dir, 'secret.key'));
    const values = { token: Buffer.from('hunter2-value'), bin: Buffer.from([0, 1, 2, 255]) };
    const d1 = await vault.write('db', values);
    assert.match(d1, /^[0-9a-f]{16}$/);
    assert.equal(fs.statSync(vault.fileOf('db', d1)).mode & 0o777, 0o600);
    assert.equal(fs.statSync(vault.dir).mode & 0o777, 0o700);
    assert.ok(!fs.readFileSync(vault.fileOf('db', d1)).includes('hunter2'));
    assert.ok(sameValues(await vault.read('db', d1), values));
    const d2 = await vault.write('db', { token: Buffer.from('other') });
    assert.notEqual(d1, d2);
    fs.copyFileSync(vault.fileOf('db', d2), vault.fileOf('other', d2));
    await assert.rejects(vault.read('other', d2), { message: `failed to open secret "other": ${vault.fileOf('other', d2)} holds secret "db"` });
    assert.deepEqual(await vault.prune(new Set([`db.${d2}`])), [`db.${d1}.age`, `other.${d2}.age`].sort());
    assert.deepEqual(fs.readdirSync(vault.dir), [`db.${d2}.age`]);
    await assert.rejects(vault.read('db', d1), { message: `failed to read secret "db": ${vault.fileOf('db', d1)} is missing` });
  });
});
