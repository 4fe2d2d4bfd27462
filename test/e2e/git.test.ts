import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eventually, requireRoot } from '../helpers/linux.js';
import { BUSYBOX_CARTEFILE, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { makeGitRemote, type GitRemote } from '../helpers/git.js';
import { tempDir } from '../helpers/paths.js';

describe('e2e: a Git repository as the source of truth', function () {
  this.timeout(120_000);
  let e: E2eEnv;
  let remote: GitRemote;
  const git = (...args: string[]) => remote.git(...args);
  const commit = (text: string, message: string) => remote.commit(text, message);

  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    const ctx = tempDir('carte-ctx-');
    fs.writeFileSync(path.join(ctx, 'Cartefile'), BUSYBOX_CARTEFILE);
    assert.equal((await e.carte(['build', '-q', '-t', 'e2e/busybox:1', ctx])).code, 0);
    fs.rmSync(ctx, { recursive: true, force: true });
    remote = makeGitRemote();
  });
  after(async () => {
    await e?.teardown();
    remote?.remove();
  });

  const readyCount = () => readiness(e.state(), 'web').filter((i) => i.ready).length;
  const source = () => remote.source;

  it('converges what is pushed, and records the commit on the revision', async () => {
    const sha = commit(webManifest({ replicas: 1 }), 'one web');
    e.daemon(['--git', `file://${remote.repo}`, '--branch', 'main', '--path', 'manifests', '--interval', '1s']);
    await eventually(async () => readyCount() === 1, 30_000, 'one ready instance');
    assert.equal(e.state().services.web?.revision.commit, sha);
    const history = (await e.carte(['history', 'web'])).stdout;
    assert.match(history, new RegExp(`1\\s+\\S+\\s+${source().replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+${sha.slice(0, 12)}\\s+manifests/web\\.yaml:3:19\\s+created`));
  });

  it('refuses a bad commit as a whole: the last good commit keeps running, the error names file:line and commit', async () => {
    const good = e.state().services.web!.revision;
    const bad = commit(`${webManifest({ replicas: 3 })}  restart: sometimes\n`, 'broken');
    await eventually(async () => e.state().sources[source()]?.lastError ?? undefined, 20_000, 'the refusal');
    assert.equal(e.state().sources[source()]!.lastError, 'manifests/web.yaml:11:12: spec.restart: "sometimes" is not one of: always, on-failure, never');
    const warning = e.state().events.find((ev) => ev.reason === 'SyncFailed');
    assert.equal(warning?.message, `commit ${bad.slice(0, 12)}: manifests/web.yaml:11:12: spec.restart: "sometimes" is not one of: always, on-failure, never`);
    assert.equal(e.state().services.web!.revision.revision, good.revision);
    assert.equal(readyCount(), 1);
  });

  it('converges the fix, at once with carte sync', async () => {
    const fix = commit(webManifest({ replicas: 3 }), 'fixed');
    const synced = await e.carte(['sync']);
    assert.equal(synced.code, 0, synced.stderr);
    // The 1 s poll may have applied the fix already; then sync has nothing left to change.
    assert.ok([`${source()}: synced\n  service/web configured\n`, `${source()}: synced\n`].includes(synced.stdout), synced.stdout);
    await eventually(async () => readyCount() === 3, 30_000, 'three ready instances');
    assert.equal(e.state().services.web!.revision.commit, fix);
    assert.equal(e.state().sources[source()]!.lastError, null);
  });

  it('removing a manifest from the repository removes the service', async () => {
    fs.rmSync(path.join(remote.work, 'manifests', 'web.yaml'));
    fs.writeFileSync(path.join(remote.work, 'manifests', '.keep'), '');
    git('add', '-A');
    git('commit', '-q', '-m', 'no more web');
    git('push', '-q', 'origin', 'main');
    await e.carte(['sync']);
    await eventually(async () => !e.state().services.web && readiness(e.state(), 'web').length === 0, 30_000, 'web to be gone');
  });
});
