// The docs quote carte's own words for users, tokens and the audit log:
// these checks keep the quotes true when a message changes.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FileAuthStore } from '../../../src/auth/store.js';
import { CarteError } from '../../../src/errors.js';
import { ROOT, tempDir } from '../../helpers/paths.js';

const doc = (name: string) => fs.readFileSync(path.join(ROOT, 'docs', name), 'utf8');

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CarteError) return e.message;
    throw e;
  }
  throw new Error('expected a CarteError');
}

describe('docs of users, tokens and audit', () => {
  let home: string;
  beforeEach(() => {
    home = tempDir('carte-auth-docs-');
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('docs/cli.md quotes the refusal of an existing user', async () => {
    const store = new FileAuthStore(home, { scrypt: { N: 1024, r: 8, p: 1 } });
    await store.addUser('lin', 'operator', 'a long passphrase');
    const msg = await messageOf(store.addUser('lin', 'viewer', 'a long passphrase'));
    assert.ok(doc('cli.md').includes(`$ carte user add lin --role viewer\nerror: ${msg}\n`), msg);
  });

  it('docs/security.md quotes the error of a damaged users.json', async () => {
    fs.writeFileSync(path.join(home, 'users.json'), '{', { mode: 0o600 });
    const msg = (await messageOf(new FileAuthStore(home).hasUsers())).replace(home, '/var/lib/carte').replace(/\(Expected [^)]*\)|\(Unexpected [^)]*\)/, '(…)');
    assert.ok(doc('security.md').includes(`error: ${msg}\n`), msg);
  });
});
