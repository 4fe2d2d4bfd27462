// A Git repository of manifests: cloned once into CARTE_HOME/sources/, then
// fetched on an interval (or at once: `carte sync`, the webhook). A commit is
// applied whole or not at all: if its manifests are invalid, the last good
// commit keeps running and the error is reported with file:line and the
// commit. Every revision it writes records the commit (`carte history`).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import type { Logger } from '../../log.js';
import type { AdmissionContext } from '../../policy/admit.js';
import { readManifestInputs } from '../../schema/load.js';
import type { Store } from '../../store/store.js';
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
  private readonly checkout: string;
  private git: SimpleGit | null = null;
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<SyncOutcome> | null = null;
  private lastTried: string | null = null;

  constructor(private readonly opts: GitSourceOptions, home: string, private readonly store: Store, private readonly log: Logger, private readonly onApplied: () => void, private readonly admission: AdmissionContext) {
    this.id = `git:${opts.url}#${opts.branch}:${opts.path.replace(/^\/+|\/+$/g, '') || '.'}`;
    this.checkout = path.join(home, 'sources', `git-${createHash('sha256').update(this.id).digest('hex').slice(0, 12)}`);
  }

  async start(): Promise<void> {
    await this.sync();
    this.timer = safeInterval(() => void this.sync(), this.opts.intervalMs);
  }

  private async repo(): Promise<SimpleGit> {
    if (this.git) return this.git;
    if (!fs.existsSync(path.join(this.checkout, '.git'))) {
      fs.rmSync(this.checkout, { recursive: true, force: true });
      fs.mkdirSync(path.dirname(this.checkout), { recursive: true });
      await simpleGit().clone(this.opts.url, this.checkout, ['--branch', this.opts.branch, '--single-branch', '--no-tags']);
    }
    this.git = simpleGit(this.checkout);
    return this.git;
  }

  /** Fetches and, if the branch moved (or the last attempt failed), applies its manifests. One at a time. */
  sync(): Promise<SyncOutcome> {
    this.syncing ??= this.syncOnce().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<SyncOutcome> {
    let commit: string;
    try {
      const git = await this.repo();
      await git.fetch('origin', this.opts.branch);
      commit = (await git.revparse([`origin/${this.opts.branch}`])).trim();
      const current = (await this.store.read()).sources[this.id];
      if (commit === this.lastTried && current?.commit === commit && !current.lastError) return { ok: true, lines: [] };
      if (commit === this.lastTried && current?.lastError) return { ok: false, lines: current.lastError.split('\n') };
      await git.reset(['--hard', `origin/${this.opts.branch}`]);
    } catch (e) {
      const message = `failed to fetch ${this.opts.url} (${this.opts.branch}): ${(e as Error).message.trim().split('\n')[0]}`;
      await recordSourceError(this.store, this.id, message, null);
      return { ok: false, lines: [message] };
    }
    this.lastTried = commit;
    const dir = path.join(this.checkout, this.opts.path);
    let texts;
    try {
      // The source tree a build context must stay in is the whole repository, not only its manifests folder.
      texts = readManifestInputs([dir], { allowEmpty: true, cwd: this.checkout }).map((t) => ({ ...t, root: this.checkout }));
    } catch (e) {
      await recordSourceError(this.store, this.id, (e as Error).message, commit);
      return { ok: false, lines: [(e as Error).message] };
    }
    const outcome = await syncTexts(this.store, this.id, texts, commit, this.admission);
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

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
  }
}
