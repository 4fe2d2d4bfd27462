// A carte killed during a registry call (SIGTERM on a hung registry) leaves its
// authfile folder; gc removes those of processes that are gone, never a live one's.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { sweepAuthFolders } from '../../../src/drivers/linux/images/skopeo.js';
import { tempDir } from '../../helpers/paths.js';

describe('registry authfile folders', () => {
  it('removes those of gone processes and unnamed ones older than an hour; keeps live ones', async () => {
    const root = tempDir();
    try {
      for (const d of ['auth-111-aaaa', `auth-${process.pid}-bbbb`, 'auth-cccc', 'auth-dddd']) {
        fs.mkdirSync(path.join(root, d));
        fs.writeFileSync(path.join(root, d, 'auth.json'), '{"auths":{}}');
      }
      const old = new Date(Date.now() - 2 * 3_600_000);
      fs.utimesSync(path.join(root, 'auth-cccc'), old, old);
      const removed = await sweepAuthFolders(root, (pid) => pid === process.pid);
      assert.deepEqual(removed.sort(), [`registry login file ${path.join(root, 'auth-111-aaaa')}`, `registry login file ${path.join(root, 'auth-cccc')}`]);
      assert.deepEqual(fs.readdirSync(root).sort(), [`auth-${process.pid}-bbbb`, 'auth-dddd']);
      assert.deepEqual(await sweepAuthFolders(path.join(root, 'absent'), () => true), []);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
