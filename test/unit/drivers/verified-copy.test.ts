// A build context copied while its author swaps a folder for a link: what is
// copied is what was opened where carte meant, or the copy is refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { verifiedCopy } from '../../../src/drivers/linux/images/verified-copy.js';
import { tempDir } from '../../helpers/paths.js';

describe('verified copy of a build context', () => {
  let root: string;
  let outside: string;
  let out: string;
  beforeEach(() => {
    root = fs.realpathSync(tempDir('carte-vc-ctx-'));
    outside = fs.realpathSync(tempDir('carte-vc-out-'));
    out = tempDir('carte-vc-dst-');
    fs.mkdirSync(path.join(root, 'app', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'app', 'sub', 'x'), 'mine\n', { mode: 0o640 });
    fs.symlinkSync('sub/x', path.join(root, 'app', 'link'));
    fs.writeFileSync(path.join(outside, 'x'), 'the host\'s\n');
  });
  afterEach(() => {
    for (const d of [root, outside, out]) fs.rmSync(d, { recursive: true, force: true });
  });
  const refuse = (reason: string): never => {
    throw new Error(reason);
  };

  it('copies files (with their modes), folders and links inside the context, leaving out what is ignored', async () => {
    fs.writeFileSync(path.join(root, 'app', 'skip.log'), 'x');
    await verifiedCopy(path.join(root, 'app'), path.join(out, 'app'), { root, keep: (src) => !src.endsWith('.log'), refuse });
    assert.equal(fs.readFileSync(path.join(out, 'app', 'sub', 'x'), 'utf8'), 'mine\n');
    assert.equal(fs.statSync(path.join(out, 'app', 'sub', 'x')).mode & 0o777, 0o640);
    assert.equal(fs.readlinkSync(path.join(out, 'app', 'link')), 'sub/x');
    assert.deepEqual(fs.readdirSync(path.join(out, 'app')).sort(), ['link', 'sub']);
  });

  it('refuses a file whose folder was swapped for a link out of the context after the folder was listed', async () => {
    const swap = () => {
      fs.renameSync(path.join(root, 'app', 'sub'), path.join(root, 'app', 'sub.old'));
      fs.symlinkSync(outside, path.join(root, 'app', 'sub'));
    };
    let swapped = false;
    const keep = (src: string) => {
      if (!swapped && src === path.join(root, 'app', 'sub', 'x')) {
        swap();
        swapped = true;
      }
      return true;
    };
    await assert.rejects(verifiedCopy(path.join(root, 'app'), path.join(out, 'app'), { root, keep, refuse }), {
      message: `app/sub/x changed while it was being copied (it now leads to ${outside}/x); build again`,
    });
    assert.equal(fs.existsSync(path.join(out, 'app', 'sub', 'x')), false);
  });

  it('refuses a folder swapped for a link out of the context before it is opened', async () => {
    const keep = (src: string) => {
      if (src === path.join(root, 'app', 'sub')) {
        fs.renameSync(src, path.join(root, 'app', 'sub.old'));
        fs.symlinkSync(outside, src);
      }
      return true;
    };
    await assert.rejects(verifiedCopy(path.join(root, 'app'), path.join(out, 'app'), { root, keep, refuse }), {
      message: `app/sub is a link to ${outside}, outside the build context`,
    });
  });
});
