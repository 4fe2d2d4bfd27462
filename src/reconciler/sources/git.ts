// A Git repository of manifests: cloned once into CARTE_HOME/sources/, then
// fetched on an interval (or at once: `carte sync`, the webhook). A commit is
// applied whole or not at all: if its manifests are invalid, the last good
// commit keeps running and the error is reported with file:line and the
// commit. Every revision it writes records the commit (`carte history`).
//
// CARTE_HOME/sources/git-<hash>/ holds `repo/`, a clone without a work tree
// that is only fetched into, and `trees/<commit>/`, one folder per commit
// tried (git-trees.ts): a commit's manifests are read from its own tree, so
// its build contexts point there and no later commit can change them.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import type { Logger } from '../../log.js';
import type { AdmissionContext } from '../../policy/admit.js';
import { readManifestInputs } from '../../schema/load.js';
import type { Store } from '../../store/store.js';
import { CommitTrees, referencedTrees, TEMP_PREFIX } from './git-trees.js';
import { recordSourceError, syncTexts, type SyncOutcome } from './record.js';
import { safeInterval } from '../../util/timers.js';

export interface GitSourceOptions {
  url: string;
  branch: string;
  /** Folder of manifests inside the repository. */
  path: string;
  intervalMs: number;
}

export class GitSource {
  readonly id: string;
  /** CARTE_HOME/sources/git-<hash>: repo/ and trees/. */
  private readonly base: string;
  private readonly repoDir: string;
  private readonly trees: CommitTrees;
  /** Missing trees already reported, so each is logged once, not every pass. */
  private readonly reportedMissing = new Set<string>();
  private git: SimpleGit | null = null;
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<SyncOutcome> | null = null;
  private lastTried: string | null = null;

  constructor(private readonly opts: GitSourceOptions, home: string, private readonly store: Store, private readonly log: Logger, private readonly onApplied: () => void, private readonly admission: AdmissionContext) {
    this.id = `git:${opts.url}#${opts.branch}:${opts.path.replace(/^\/+|\/+$/g, '') || '.'}`;
    this.base = path.join(home, 'sources', `git-${createHash('sha256').update(this.id).digest('hex').slice(0, 12)}`);
    this.repoDir = path.join(this.base, 'repo');
    this.trees = new CommitTrees(path.join(this.base, 'trees'), this.repoDir);
  }

  async start(): Promise<void> {
    await this.sync();
    this.timer = safeInterval(() => void this.sync(), this.opts.intervalMs);
  }

  private async repo(): Promise<SimpleGit> {
    if (this.git) return this.git;
    if (fs.existsSync(path.join(this.base, '.git'))) {
      // A carte from before commit trees checked the repository out here and reset it to every
      // commit it tried, refused ones too: nothing in it can be trusted. The first sync stores
      // revisions that build from the commit's own tree instead.
      this.log.info({ source: this.id, folder: this.base }, 'removing the old shared checkout');
      fs.rmSync(this.base, { recursive: true, force: true });
    }
    fs.mkdirSync(this.base, { recursive: true });
    // A clone that a crash interrupted.
    for (const name of fs.readdirSync(this.base)) {
      if (name.startsWith(TEMP_PREFIX)) fs.rmSync(path.join(this.base, name), { recursive: true, force: true });
    }
    if (!fs.existsSync(path.join(this.repoDir, '.git'))) {
      fs.rmSync(this.repoDir, { recursive: true, force: true });
      // Cloned aside and renamed into place: repo/ is only ever a whole clone.
      const tmp = fs.mkdtempSync(path.join(this.base, TEMP_PREFIX));
      try {
        await simpleGit().clone(this.opts.url, tmp, ['--no-checkout', '--branch', this.opts.branch, '--single-branch', '--no-tags']);
        fs.renameSync(tmp, this.repoDir);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
    this.git = simpleGit(this.repoDir);
    return this.git;
  }

  /** Fetches and, if the branch moved (or the last attempt failed), applies its manifests. One at a time. */
  /** Fetches and applies now; never rejects (a failure is logged, retried on the next interval). */
  sync(): Promise<SyncOutcome> {
    this.syncing ??= this.syncOnce().catch((e: Error) => {
      // The store could not be written (its lock lost under load, a full disk): nothing
      // here is applied, so the next round tries this commit again.
      this.lastTried = null;
      const message = `failed to apply ${this.id}: ${e.message}`;
      this.log.error({ source: this.id, err: e.message }, 'git sync failed; retrying on the next interval');
      return { ok: false, lines: [message] };
    }).finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<SyncOutcome> {
    const outcome = await this.tryBranch();
    await this.tidyTrees();
    return outcome;
  }

  private async tryBranch(): Promise<SyncOutcome> {
    let commit: string;
    try {
      const git = await this.repo();
      await git.fetch('origin', this.opts.branch);
      commit = (await git.revparse([`origin/${this.opts.branch}`])).trim();
      const current = (await this.store.read()).sources[this.id];
      if (commit === this.lastTried && current?.commit === commit && !current.lastError) return { ok: true, lines: [] };
      if (commit === this.lastTried && current?.lastError) return { ok: false, lines: current.lastError.split('\n') };
    } catch (e) {
      const message = `failed to fetch ${this.opts.url} (${this.opts.branch}): ${firstLine(e)}`;
      await recordSourceError(this.store, this.id, message, null);
      return { ok: false, lines: [message] };
    }
    let tree: string;
    try {
      tree = await this.trees.materialize(commit);
    } catch (e) {
      const message = `failed to check out commit ${commit.slice(0, 12)}: ${firstLine(e)}`;
      await recordSourceError(this.store, this.id, message, commit);
      return { ok: false, lines: [message] };
    }
    this.lastTried = commit;
    let texts;
    try {
      const dir = manifestsFolder(tree, this.opts.path, commit);
      // The source tree a build context must stay in is the commit's whole tree, not only its manifests folder.
      texts = readManifestInputs([dir], { allowEmpty: true, cwd: tree }).map((t) => ({ ...t, root: tree }));
    } catch (e) {
      await recordSourceError(this.store, this.id, (e as Error).message, commit);
      return { ok: false, lines: [(e as Error).message] };
    }
    const mine = Object.values((await this.store.read()).services).filter((s) => s.source === this.id);
    const outcome = await syncTexts(this.store, this.id, texts, commit, this.admission, await this.trees.unchangedContexts(mine, commit));
    this.log.info({ source: this.id, commit, ok: outcome.ok, changes: outcome.lines }, outcome.ok ? 'git synced' : 'git commit refused');
    if (outcome.ok) this.onApplied();
    return outcome;
  }

  /** Admits the current commit again (the server policy changed), even though the branch did not move. */
  async readmit(): Promise<SyncOutcome> {
    await this.syncing;
    this.lastTried = null;
    return this.sync();
  }

  /**
   * Keeps the trees a stored revision builds from (current or in history, for
   * rollback) and removes the rest: a refused commit's, one replaced by a newer
   * commit, a crash's temporary folders. Every pass, after the store was
   * written, so a tree is never removed before the revision leaving it is.
   */
  private async tidyTrees(): Promise<void> {
    try {
      const services = Object.values((await this.store.read()).services);
      const { removed, restored, missing } = await this.trees.tidy(referencedTrees(services, this.trees.bases()));
      if (removed.length || restored.length) this.log.info({ source: this.id, removed, restored }, 'git trees tidied');
      for (const m of missing) {
        if (this.reportedMissing.has(m.commit)) continue;
        this.reportedMissing.add(m.commit);
        this.log.warn({ source: this.id, commit: m.commit, err: m.error }, 'a tree a stored revision builds from is missing and cannot be written again');
      }
    } catch (e) {
      // Housekeeping only: what runs does not depend on it, and the next pass tries again.
      this.log.warn({ source: this.id, err: firstLine(e) }, 'could not tidy the commit trees');
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
  }
}

const firstLine = (e: unknown) => (e as Error).message.trim().split('\n')[0];

/**
 * The commit's manifests folder, read only if it is a folder of the commit
 * itself: a commit that makes `--path` (or a folder on the way) a symbolic
 * link would otherwise have carte, as root, read YAML anywhere on the host
 * (an outside test read a root-only folder that way, and deployed from it).
 */
export function manifestsFolder(tree: string, rel: string, commit: string): string {
  const realTree = fs.realpathSync(tree);
  const wanted = path.join(realTree, rel);
  let real: string;
  try {
    real = fs.realpathSync(path.join(tree, rel));
  } catch {
    return path.join(tree, rel); // missing: readManifestInputs says so
  }
  if (real !== wanted) {
    throw new Error(`--path ${rel}: in commit ${commit.slice(0, 12)} it leads to ${path.relative(realTree, real).startsWith('..') ? real : path.relative(realTree, real)} through a symbolic link; carte reads manifests only from the commit's own folders`);
  }
  return path.join(tree, rel);
}
