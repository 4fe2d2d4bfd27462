// The build cache is keyed by content: a touched file (new mtime, same bytes)
// is still cached, a changed byte (same size) rebuilds, a changed mode
// rebuilds; the content memo spares rereading files whose stat is unchanged.
// COPY from the context only: no root needed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ContentMemo, ImageBuilder } from '../../../src/drivers/linux/images/build.js';
import { Runner } from '../../../src/drivers/linux/exec.js';
import { ImageStore } from '../../../src/drivers/linux/images/store.js';
import { cliLogger } from '../../../src/log.js';
import { tempDir } from '../../helpers/paths.js';

describe('build cache keys', () => {
  let home: string;
  let ctx: string;
  let builder: ImageBuilder;
  beforeEach(() => {
    home = tempDir('carte-cache-home-');
    ctx = tempDir('carte-cache-ctx-');
    builder = new ImageBuilder(new ImageStore(home), new Runner(cliLogger('error')));
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM scratch\nCOPY app/ /app/\nCOPY conf.txt /etc/conf.txt\n');
    fs.mkdirSync(path.join(ctx, 'app'));
    fs.writeFileSync(path.join(ctx, 'app', 'main.js'), 'console.log(1)\n');
    fs.writeFileSync(path.join(ctx, 'conf.txt'), 'a=1\n');
  });
  afterEach(() => {
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(ctx, { recursive: true, force: true });
  });
  const build = async () => {
    const r = await builder.build({ context: ctx, tag: 'test/cache:1' });
    return [r.cachedSteps, r.steps];
  };
  const later = (file: string) => {
    const t = fs.statSync(file).mtime.getTime() / 1000 + 60;
    fs.utimesSync(file, t, t);
  };

  it('an unchanged context is all cached', async () => {
    assert.deepEqual(await build(), [0, 2]);
    assert.deepEqual(await build(), [2, 2]);
  });

  it('a touched file (new mtime, same content) is still cached', async () => {
    await build();
    later(path.join(ctx, 'app', 'main.js'));
    assert.deepEqual(await build(), [2, 2]);
  });

  it('a changed byte of the same size rebuilds that step only', async () => {
    await build();
    fs.writeFileSync(path.join(ctx, 'conf.txt'), 'a=2\n');
    later(path.join(ctx, 'conf.txt'));
    assert.deepEqual(await build(), [1, 2]);
  });

  it('a changed mode rebuilds that step, and the steps above it (their parent layer changed)', async () => {
    await build();
    fs.chmodSync(path.join(ctx, 'app', 'main.js'), 0o755);
    assert.deepEqual(await build(), [0, 2]);
  });

  it('the memo hashes a file once while its stat is unchanged, and again when it changes', async () => {
    const file = path.join(ctx, 'conf.txt');
    fs.utimesSync(file, 1_700_000_000, 1_700_000_000); // whole seconds: put back exactly below
    const memo = new ContentMemo(path.join(home, 'memo.json'));
    await memo.load();
    const first = await memo.hash(file, fs.statSync(file));
    assert.equal(first, createHash('sha256').update('a=1\n').digest('hex'));
    await memo.save();
    // Same stat, different bytes behind it (written, then the old mtime put back): the memo answers.
    fs.writeFileSync(file, 'a=9\n');
    fs.utimesSync(file, 1_700_000_000, 1_700_000_000);
    const again = new ContentMemo(path.join(home, 'memo.json'));
    await again.load();
    assert.equal(await again.hash(file, fs.statSync(file)), first, 'not reread: (path, size, mtime, inode) unchanged');
    later(file);
    assert.notEqual(await again.hash(file, fs.statSync(file)), first, 'reread once the mtime changed');
  });
});
