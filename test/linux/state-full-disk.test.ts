// A full disk must never cost the state: on a real, small tmpfs filled to the
// last byte, `carte apply` fails with a message that says what to do, leaves
// state.json byte for byte as it was (and verifying), and works again once
// space is freed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { carte } from '../helpers/cli.js';
import { requireRoot } from '../helpers/linux.js';
import { serviceDoc, yaml } from '../helpers/manifests.js';
import { tempDir } from '../helpers/paths.js';

describe('store on a full disk', function () {
  this.timeout(60_000);
  let mnt: string | undefined;
  let mounted = false;
  let home: string;
  let work: string;

  before(function () {
    requireRoot(this);
    mnt = tempDir('carte-full-disk-');
    work = tempDir('carte-work-');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'carte-test-full', mnt]);
    mounted = true;
    home = path.join(mnt, 'home');
  });
  after(() => {
    // Unmount even when a test failed; lazily if something still holds it open.
    if (mounted) {
      try {
        execFileSync('umount', [mnt!]);
      } catch {
        execFileSync('umount', ['-l', mnt!]);
      }
    }
    if (mnt) fs.rmSync(mnt, { recursive: true, force: true });
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Writes a file until the filesystem refuses another byte. */
  function fill(file: string): void {
    const fd = fs.openSync(file, 'w');
    try {
      for (const size of [64 * 1024, 4096, 1]) {
        const buf = Buffer.alloc(size, 1);
        for (;;) {
          try {
            fs.writeSync(fd, buf);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw e;
          }
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  it('refuses the write with the free space and mount, changes nothing, and works once space is freed', async () => {
    fs.writeFileSync(path.join(work, 'a.yaml'), yaml(serviceDoc('a')));
    fs.writeFileSync(path.join(work, 'b.yaml'), yaml(serviceDoc('b')));
    const apply = (f: string) => carte(home, ['apply', '-f', f, '--no-start'], { cwd: work });
    assert.deepEqual(await apply('a.yaml'), { code: 0, stdout: 'service/a created\n', stderr: '' });
    await apply('a.yaml'); // a second write, so there is a generation too
    const before = fs.readFileSync(path.join(home, 'state.json'));
    const generations = fs.readdirSync(path.join(home, 'generations'));

    const filler = path.join(mnt!, 'filler');
    fill(filler);
    assert.deepEqual(await apply('b.yaml'), {
      code: 1,
      stdout: '',
      stderr: `error: failed to write state file ${home}/state.json: no space left on device (0 bytes free on ${mnt}); free some space — nothing was changed\n`,
    });
    assert.deepEqual(fs.readFileSync(path.join(home, 'state.json')), before);
    assert.deepEqual(fs.readdirSync(path.join(home, 'generations')), generations);
    assert.deepEqual(fs.readdirSync(home).filter((n) => n.endsWith('.tmp')), []);
    const verify = await carte(home, ['state', 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);

    fs.rmSync(filler);
    assert.deepEqual(await apply('b.yaml'), { code: 0, stdout: 'service/b created\n', stderr: '' });
    assert.equal((await carte(home, ['state', 'verify'])).code, 0);
  });
});
