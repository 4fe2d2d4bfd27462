// A Git source reads each commit from its own tree (issue 13): builds come
// from the commit that was admitted, never from a later (refused) one. Runs
// GitSource against a local bare repository and a store in a temp folder.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cliLogger } from '../../../../src/log.js';
import { hostRealPath } from '../../../../src/policy/facts.js';
import { DEFAULT_POLICY } from '../../../../src/policy/policy.js';
import { GitSource } from '../../../../src/reconciler/sources/git.js';
import { syncTexts } from '../../../../src/reconciler/sources/record.js';
import { readManifestInputs } from '../../../../src/schema/load.js';
import { Store } from '../../../../src/store/store.js';
import { makeGitRemote, type GitRemote } from '../../../helpers/git.js';
import { tempDir } from '../../../helpers/paths.js';

const CARTEFILE = 'FROM scratch\nCOPY hello.txt /hello.txt\n';

/** manifests/web.yaml building ../app, with `extra` lines under spec. */
const buildManifest = (extra = '') => `apiVersion: carte/v1
kind: Service
metadata: { name: web }
spec:
  build: { context: ../app }
  replicas: 1
${extra}`;

describe('Git source: one tree per commit', () => {
  let home: string;
  let store: Store;
  let remote: GitRemote;
  let applied: number;
  const admission = () => ({ policy: DEFAULT_POLICY, home, realpath: hostRealPath });
  const source = () => new GitSource({ url: `file://${remote.repo}`, branch: 'main', path: 'manifests', intervalMs: 60_000 }, home, store, cliLogger('silent'), () => applied++, admission());
  /** CARTE_HOME/sources/git-<hash>: the only folder there. */
  const base = () => {
    const names = fs.readdirSync(path.join(home, 'sources'));
    assert.equal(names.length, 1, names.join(', '));
    return path.join(home, 'sources', names[0]!);
  };
  const trees = () => path.join(base(), 'trees');
  const treeNames = () => fs.readdirSync(trees()).sort();
  const stored = async () => (await store.read()).services.web;
  const read = (...parts: string[]) => fs.readFileSync(path.join(...parts), 'utf8');
  const good = () => remote.commitFiles({ 'app/Cartefile': CARTEFILE, 'app/hello.txt': 'hello\n', 'manifests/web.yaml': buildManifest() }, 'web, built from app/');

  beforeEach(() => {
    home = tempDir();
    store = Store.open(home);
    remote = makeGitRemote();
    applied = 0;
  });
  afterEach(() => {
    fs.rmSync(home, { recursive: true, force: true });
    remote.remove();
  });

  it('reads a commit from trees/<commit>, stores the build context inside it, and keeps the clone without a work tree', async () => {
    good();
    const c1 = remote.commitFiles({ 'app/greeting': { symlink: 'hello.txt' } }, 'a symlink');
    assert.deepEqual(await source().sync(), { ok: true, lines: ['service/web created'] });
    assert.equal(applied, 1);
    assert.deepEqual(treeNames(), [c1]);
    const revision = (await stored())!.revision;
    assert.equal(revision.commit, c1);
    assert.deepEqual(revision.spec.build, { context: path.join(trees(), c1, 'app'), cartefile: 'Cartefile', args: {} });
    assert.equal(read(trees(), c1, 'app', 'Cartefile'), CARTEFILE);
    // A symlink in the repository is a symlink in the tree: the image builder judges where it leads.
    assert.equal(fs.readlinkSync(path.join(trees(), c1, 'app', 'greeting')), 'hello.txt');
    assert.deepEqual(fs.readdirSync(path.join(trees(), c1)).sort(), ['app', 'manifests']);
    assert.deepEqual(fs.readdirSync(base()).sort(), ['repo', 'trees']);
    assert.deepEqual(fs.readdirSync(path.join(base(), 'repo')), ['.git']);
  });

  it('refuses a commit whose manifests folder is a symbolic link: carte reads YAML only from the commit\'s own folders', async () => {
    const secret = tempDir('carte-git-secret-');
    fs.writeFileSync(path.join(secret, 'x.yaml'), 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: x }\nspec: { image: x:1, env: { DB_PASSWORD: hunter2 } }\n');
    try {
      const c1 = remote.commitFiles({ manifests: { symlink: secret } }, 'manifests is a link');
      const outcome = await source().sync();
      const message = `--path manifests: in commit ${c1.slice(0, 12)} it leads to ${secret} through a symbolic link; carte reads manifests only from the commit's own folders`;
      assert.deepEqual(outcome, { ok: false, lines: [message] });
      assert.deepEqual(Object.keys((await store.read()).services), []);
      assert.ok(!JSON.stringify(await store.read()).includes('hunter2'));
    } finally {
      fs.rmSync(secret, { recursive: true, force: true });
    }
  });

  it('a refused commit that rewrites the Cartefile and adds a symlink changes nothing the stored revision builds from, and its tree is removed', async () => {
    const c1 = good();
    const git = source();
    await git.sync();
    const bad = remote.commitFiles({
      'app/Cartefile': 'FROM scratch\nCOPY secret /secret\n',
      'app/secret': { symlink: '/etc/shadow' },
      'manifests/web.yaml': buildManifest('  volumes: [{ hostPath: /etc, mountPath: /host }]\n'),
    }, 'refused: mounts /etc');
    const message = 'manifests/web.yaml:7:25: spec.volumes[0].hostPath: "/etc" is not allowed by the server policy (allowed host paths: none)';
    assert.deepEqual(await git.sync(), { ok: false, lines: [message] });
    assert.equal(applied, 1);
    const status = (await store.read()).sources[remote.source]!;
    assert.deepEqual([status.commit, status.lastError], [c1, message]);
    const revision = (await stored())!.revision;
    assert.deepEqual([revision.revision, revision.commit, revision.spec.build?.context], [1, c1, path.join(trees(), c1, 'app')]);
    assert.equal(read(revision.spec.build!.context, 'Cartefile'), CARTEFILE);
    assert.deepEqual(fs.readdirSync(revision.spec.build!.context).sort(), ['Cartefile', 'hello.txt']);
    assert.deepEqual(treeNames(), [c1], `the refused commit's tree (${bad}) is gone`);
  });

  it('a newer good commit: the old tree stays while a revision in history builds from it, and goes when none does', async () => {
    const c1 = good();
    const git = source();
    await git.sync();
    const c2 = remote.commitFiles({ 'app/hello.txt': 'hello again\n' }, 'new hello');
    assert.deepEqual(await git.sync(), { ok: true, lines: ['service/web configured'] });
    const web = (await stored())!;
    assert.deepEqual(web.history.map((r) => [r.revision, r.spec.build?.context]), [[1, path.join(trees(), c1, 'app')], [2, path.join(trees(), c2, 'app')]]);
    assert.deepEqual(treeNames(), [c1, c2].sort());
    assert.equal(read(trees(), c1, 'app', 'hello.txt'), 'hello\n');
    assert.equal(read(trees(), c2, 'app', 'hello.txt'), 'hello again\n');

    // Revision 1 leaves the history (as the 21st revision would push it out): its tree goes at the next pass.
    await store.update((data) => {
      data.services.web!.history = [data.services.web!.revision];
    });
    assert.deepEqual(await git.sync(), { ok: true, lines: [] });
    assert.deepEqual(treeNames(), [c2]);

    // An image instead of a build: revision 2 in history still builds from c2's tree.
    const c3 = remote.commit(buildManifest().replace('build: { context: ../app }', 'image: test/web:1'), 'an image');
    assert.deepEqual(await git.sync(), { ok: true, lines: ['service/web configured'] });
    assert.equal((await store.read()).sources[remote.source]!.commit, c3);
    assert.deepEqual(treeNames(), [c2]);

    // No manifests any more: web is pruned, and nothing builds from any tree.
    remote.commitFiles({ 'manifests/web.yaml': null, 'manifests/.keep': '' }, 'no web');
    assert.deepEqual(await git.sync(), { ok: true, lines: ['service/web pruned'] });
    assert.deepEqual(treeNames(), []);
  });

  it('a commit that leaves the build context alone keeps building from the older tree: no rebuild, no rollout', async () => {
    const c1 = good();
    const git = source();
    await git.sync();
    const context = path.join(trees(), c1, 'app');

    const c2 = remote.commitFiles({ 'README.md': 'notes\n' }, 'unrelated');
    assert.deepEqual(await git.sync(), { ok: true, lines: [] });
    assert.deepEqual([(await stored())!.revision.revision, (await stored())!.revision.spec.build?.context], [1, context]);
    assert.equal((await store.read()).sources[remote.source]!.commit, c2);
    assert.deepEqual(treeNames(), [c1]);

    remote.commit(buildManifest().replace('replicas: 1', 'replicas: 2'), 'two');
    assert.deepEqual(await git.sync(), { ok: true, lines: ['service/web configured'] });
    const web = (await stored())!;
    assert.deepEqual([web.revision.revision, web.revision.spec.replicas, web.revision.spec.build?.context], [2, 2, context]);
    assert.equal(web.revision.templateHash, web.history[0]!.templateHash, 'the instances are not replaced');
    assert.deepEqual(treeNames(), [c1]);

    const c4 = remote.commitFiles({ 'app/Cartefile': 'FROM scratch\nCOPY hello.txt /srv/hello.txt\n' }, 'a new Cartefile');
    assert.deepEqual(await git.sync(), { ok: true, lines: ['service/web configured'] });
    assert.equal((await stored())!.revision.spec.build?.context, path.join(trees(), c4, 'app'));
    assert.deepEqual(treeNames(), [c1, c4].sort());
  });

  it('after a restart: the trees are reused, a crash\'s temporary folders removed, and a deleted tree a revision needs written again', async () => {
    const c1 = good();
    await source().sync();
    const inode = fs.statSync(path.join(trees(), c1)).ino;
    // What a crash in the middle of a checkout or a clone leaves.
    fs.mkdirSync(path.join(trees(), '.tmp-a1b2c3', 'tree', 'app'), { recursive: true });
    fs.writeFileSync(path.join(trees(), '.tmp-a1b2c3', 'tree', 'app', 'Cartefile'), 'FROM half\n');
    fs.mkdirSync(path.join(base(), '.tmp-d4e5f6'));

    const restarted = source();
    assert.deepEqual(await restarted.sync(), { ok: true, lines: [] });
    assert.deepEqual(treeNames(), [c1]);
    assert.equal(fs.statSync(path.join(trees(), c1)).ino, inode, 'the tree was reused, not written again');
    assert.deepEqual(fs.readdirSync(base()).sort(), ['repo', 'trees']);

    fs.rmSync(path.join(trees(), c1), { recursive: true });
    assert.deepEqual(await restarted.sync(), { ok: true, lines: [] });
    assert.deepEqual(treeNames(), [c1]);
    assert.equal(read(trees(), c1, 'app', 'Cartefile'), CARTEFILE);
  });

  it('replaces the shared checkout a carte from before commit trees left, and moves the build to the commit\'s tree', async () => {
    const c1 = good();
    // The old layout: the repository checked out in sources/git-<hash>/ itself, applied from there.
    const dir = path.join(home, 'sources', `git-${createHash('sha256').update(remote.source).digest('hex').slice(0, 12)}`);
    execFileSync('git', ['clone', '-q', remote.repo, dir]);
    const texts = readManifestInputs([path.join(dir, 'manifests')], { allowEmpty: true, cwd: dir }).map((t) => ({ ...t, root: dir }));
    await syncTexts(store, remote.source, texts, c1, admission());
    assert.equal((await stored())!.revision.spec.build?.context, path.join(dir, 'app'));

    assert.deepEqual(await source().sync(), { ok: true, lines: ['service/web configured'] });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['repo', 'trees']);
    assert.equal((await stored())!.revision.spec.build?.context, path.join(trees(), c1, 'app'));
    assert.deepEqual(treeNames(), [c1]);
  });

  it('CARTE_HOME through a symlink: the context is stored by its real path, and its tree is kept', async () => {
    const real = home;
    home = path.join(tempDir(), 'home');
    fs.symlinkSync(real, home);
    store = Store.open(home);
    const c1 = good();
    assert.deepEqual(await source().sync(), { ok: true, lines: ['service/web created'] });
    assert.equal((await stored())!.revision.spec.build?.context, path.join(real, path.relative(home, trees()), c1, 'app'));
    assert.deepEqual(treeNames(), [c1]);
    fs.rmSync(path.dirname(home), { recursive: true });
    home = real;
  });
});
