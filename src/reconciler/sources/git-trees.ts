// One folder per commit a Git source tries: trees/<commit>/, written once and
// never changed. Manifests are read from it and it is their source tree, so a
// build context admitted from a commit points into that commit's own files;
// a later commit, even a refused one, cannot change what a stored revision
// builds (issue 13: with one shared checkout, `git reset --hard` to a refused
// commit rewrote the context of the last good one).
//
// A tree is written into a temporary folder and renamed into place, so
// trees/<commit> only ever names a whole tree; a temporary folder is a crash's
// leftover and removed. A tree lives while a stored revision (current or kept
// in history, which `carte rollback` returns to) builds from it.
import fs from 'node:fs';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import type { ReusedContext } from '../../api/apply.js';
import { isWithin } from '../../policy/host-paths.js';
import type { StoredService } from '../../store/state.js';

/** Names in trees/ that are not whole trees: a materialization under way, or a crash's leftover. */
export const TEMP_PREFIX = '.tmp-';
/** A tree's name: its full commit id (SHA-1 or SHA-256). */
const COMMIT_NAME = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * The trees (commit names) that some revision of `services`, current or in
 * history, builds from: its build context or Cartefile lies inside
 * `<base>/<commit>/` for one of `bases` (trees/ as named and as really
 * resolved, since admission stores a context by its real path). Pure.
 */
export function referencedTrees(services: readonly StoredService[], bases: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const s of services) {
    for (const rev of [s.revision, ...s.history]) {
      const build = rev.spec.build;
      if (!build) continue;
      for (const p of [build.context, path.posix.resolve(build.context, build.cartefile)]) {
        for (const base of bases) {
          if (p === base || !isWithin(p, base)) continue;
          names.add(path.posix.relative(base, p).split('/')[0]!);
        }
      }
    }
  }
  return names;
}

export class CommitTrees {
  /** @param dir the trees/ folder; @param repo the repository the commits are read from. */
  constructor(readonly dir: string, private readonly repo: string) {}

  path(commit: string): string {
    return path.join(this.dir, commit);
  }

  /** trees/ as named and through its symlinks (CARTE_HOME may be a link). */
  bases(): string[] {
    const bases = [this.dir];
    try {
      const real = fs.realpathSync.native(this.dir);
      if (real !== this.dir) bases.push(real);
    } catch {
      // No trees/ yet: nothing can be inside it.
    }
    return bases;
  }

  /**
   * For each service whose current revision builds from an older tree: its
   * context's folder in `commit`'s tree → the stored context, when Git has the
   * same tree id at that folder in both commits (the same names, modes,
   * contents and symlinks) and the Cartefile lies inside it. The old tree was
   * admitted with that folder and never changes, so building from it builds
   * the same files.
   */
  async unchangedContexts(services: readonly StoredService[], commit: string): Promise<Map<string, ReusedContext>> {
    const same = new Map<string, ReusedContext>();
    const git = simpleGit(this.repo);
    const bases = this.bases();
    for (const s of services) {
      const build = s.revision.spec.build;
      if (!build || !isWithin(path.posix.resolve(build.context, build.cartefile), build.context)) continue;
      const base = bases.find((b) => build.context !== b && isWithin(build.context, b));
      if (!base) continue;
      const [old, ...rest] = path.posix.relative(base, build.context).split('/');
      if (old === commit || !COMMIT_NAME.test(old!) || !fs.existsSync(path.join(base, old!))) continue;
      const folder = rest.join('/');
      const id = async (c: string) => (await git.raw(['rev-parse', '--verify', '--end-of-options', `${c}:${folder}`])).trim();
      try {
        if ((await id(old!)) !== (await id(commit))) continue;
      } catch {
        continue; // Not a folder of one of the commits: the new context is the new tree's.
      }
      same.set(s.name, { from: path.posix.join(base, commit, folder), to: build.context });
    }
    return same;
  }

  /** The tree of `commit`, written whole first if it is not there. */
  async materialize(commit: string): Promise<string> {
    if (!COMMIT_NAME.test(commit)) throw new Error(`not a full commit id: ${JSON.stringify(commit)}`);
    const dest = this.path(commit);
    // Only ever a whole tree: it was renamed into place after it was written.
    if (fs.existsSync(dest)) return dest;
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(this.dir, TEMP_PREFIX));
    try {
      const files = path.join(tmp, 'tree');
      fs.mkdirSync(files);
      // A private index, so the repository's own is never touched. checkout-index writes files and
      // symlinks as Git stores them (a symlink stays a symlink; the image builder judges it) and,
      // unlike `git archive`, honours no export-ignore/export-subst: the tree is the commit.
      // simple-git drops the ambient GIT_* variables (its environment guard); so does this.
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toUpperCase().startsWith('GIT_')));
      const git = simpleGit({ baseDir: this.repo, allowEnvironment: ['GIT_INDEX_FILE'] }).env({ ...env, GIT_INDEX_FILE: path.join(tmp, 'index') });
      await git.raw(['read-tree', commit]);
      await git.raw(['checkout-index', '--all', `--prefix=${files}/`]);
      syncTree(files);
      fs.renameSync(files, dest);
      syncDir(this.dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return dest;
  }

  /**
   * Removes every temporary folder and every tree not in `keep`, and writes
   * again the trees in `keep` that are missing (someone deleted one a stored
   * revision builds from) when the repository still has the commit.
   */
  async tidy(keep: ReadonlySet<string>): Promise<{ removed: string[]; restored: string[]; missing: Array<{ commit: string; error: string }> }> {
    const removed: string[] = [];
    const restored: string[] = [];
    const missing: Array<{ commit: string; error: string }> = [];
    const present = fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : [];
    for (const name of present) {
      if (keep.has(name) && !name.startsWith(TEMP_PREFIX)) continue;
      fs.rmSync(path.join(this.dir, name), { recursive: true, force: true });
      removed.push(name);
    }
    for (const commit of [...keep].sort()) {
      if (present.includes(commit) || !COMMIT_NAME.test(commit)) continue;
      try {
        await this.materialize(commit);
        restored.push(commit);
      } catch (e) {
        missing.push({ commit, error: (e as Error).message.trim().split('\n')[0]! });
      }
    }
    return { removed: removed.sort(), restored, missing };
  }
}

/** fsyncs every file and folder below `dir`, so a renamed tree is whole on disk after a power loss too. */
function syncTree(dir: string): void {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) syncTree(p);
    else if (entry.isFile()) syncFile(p);
  }
  syncDir(dir);
}

function syncFile(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const syncDir = syncFile;
