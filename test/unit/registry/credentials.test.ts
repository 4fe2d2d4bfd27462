import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { RegistryCredentials } from '../../../src/registry/credentials.js';
import { generateIdentity, recipientOf } from '../../../src/secrets/age.js';
import type { SecretKey } from '../../../src/secrets/key.js';
import { tempDir } from '../../helpers/paths.js';

async function keyOf(...identities: string[]): Promise<SecretKey> {
  return { file: '/test/secret.key', identities, recipient: await recipientOf(identities.at(-1)!) };
}

describe('registry logins (encrypted to the secret key)', () => {
  let home: string;
  beforeEach(() => (home = tempDir()));
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('keeps logins encrypted (0600 in a 0700 folder), one per registry; logout removes one', async () => {
    const key = await keyOf(await generateIdentity());
    const creds = new RegistryCredentials(home, async () => key);
    assert.equal(await creds.get('127.0.0.1:5000'), null);
    await creds.set('127.0.0.1:5000', { username: 'ci', password: 'hunter2-secret' });
    await creds.set('registry.lan:5000', { username: 'ops', password: 'other-secret' });
    assert.deepEqual(await creds.get('127.0.0.1:5000'), { username: 'ci', password: 'hunter2-secret' });
    assert.deepEqual(await creds.registries(), ['127.0.0.1:5000', 'registry.lan:5000']);
    const file = path.join(home, 'registries', 'auth.age');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
    const bytes = fs.readFileSync(file);
    for (const word of ['hunter2-secret', 'other-secret', 'ci', '127.0.0.1']) assert.equal(bytes.includes(word), false, word);
    assert.equal(await creds.remove('127.0.0.1:5000'), true);
    assert.equal(await creds.remove('127.0.0.1:5000'), false);
    assert.deepEqual(await creds.registries(), ['registry.lan:5000']);
  });

  it('a rotated key opens them once they are encrypted again; another key is a clear error', async () => {
    const old = await generateIdentity();
    const fresh = await generateIdentity();
    let key = await keyOf(old);
    const creds = new RegistryCredentials(home, async () => key);
    await creds.set('127.0.0.1:5000', { username: 'ci', password: 'pw' });
    await creds.reencrypt(await keyOf(old, fresh));
    key = await keyOf(fresh);
    assert.deepEqual(await creds.get('127.0.0.1:5000'), { username: 'ci', password: 'pw' });
    key = await keyOf(await generateIdentity());
    await assert.rejects(creds.get('127.0.0.1:5000'), {
      message: `failed to open registry credentials: ${home}/registries/auth.age was encrypted to a key that /test/secret.key does not hold (log in again: carte login REGISTRY)`,
    });
  });
});
