// A local Git "remote" for the tests of Git sources (there is no network
// here): a bare repository and a working clone on branch main with a
// manifests/ folder; commit() writes manifests/web.yaml, commits and pushes
// (commitFiles() any files and symlinks).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './paths.js';

export interface GitRemote {
  /** The bare repository (what the daemon follows). */
  repo: string;
  /** The working clone tests commit from. */
  work: string;
  /** The daemon's source id for `manifests/` on main. */
  source: string;
  git(...args: string[]): string;
  /** Writes manifests/web.yaml, commits and pushes; returns the commit. */
  commit(text: string, message: string): string;
  /**
   * Writes files (text), symlinks ({ symlink: target }) or removes them (null),
   * paths relative to the repository; commits and pushes; returns the commit.
   */
  commitFiles(files: Record<string, string | { symlink: string } | null>, message: string): string;
  remove(): void;
}

export function makeGitRemote(): GitRemote {
  const repo = path.join(tempDir('carte-git-'), 'manifests.git');
  execFileSync('git', ['init', '-q', '--bare', '--initial-branch', 'main', repo]);
  const work = tempDir('carte-work-');
  execFileSync('git', ['clone', '-q', repo, work]);
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=carte-test', '-c', 'user.email=test@carte.invalid', ...args], { cwd: work }).toString().trim();
  git('checkout', '-q', '-b', 'main');
  fs.mkdirSync(path.join(work, 'manifests'));
  const commitFiles: GitRemote['commitFiles'] = (files, message) => {
    for (const [file, content] of Object.entries(files)) {
      const p = path.join(work, file);
      fs.rmSync(p, { force: true, recursive: true });
      if (content === null) continue;
      fs.mkdirSync(path.dirname(p), { recursive: true });
      if (typeof content === 'string') fs.writeFileSync(p, content);
      else fs.symlinkSync(content.symlink, p);
    }
    git('add', '-A');
    git('commit', '-q', '-m', message);
    git('push', '-q', 'origin', 'main');
    return git('rev-parse', 'HEAD');
  };
  return {
    repo, work, source: `git:file://${repo}#main:manifests`, git,
    commit(text, message) {
      return commitFiles({ 'manifests/web.yaml': text }, message);
    },
    commitFiles,
    remove() {
      for (const d of [path.dirname(repo), work]) fs.rmSync(d, { recursive: true, force: true });
    },
  };
}
