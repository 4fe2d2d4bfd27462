// A watched folder of manifests: every *.yaml / *.yml below it is the whole
// desired set of this source. chokidar reports changes; they are debounced
// (an editor saves in several writes) and the folder is read again whole.
import chokidar, { type FSWatcher } from 'chokidar';
import path from 'node:path';
import { CarteError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { AdmissionContext } from '../../policy/admit.js';
import { readManifestInputs } from '../../schema/load.js';
import type { Store } from '../../store/store.js';
import { recordSourceError, syncTexts, type SyncOutcome } from './record.js';

export const FOLDER_DEBOUNCE_MS = 150;
/** After a sync that could not be saved (the store's lock lost under load, a full disk), the next try. */
export const FOLDER_RETRY_MS = 2_000;

export class FolderSource {
  readonly id: string;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<SyncOutcome> | null = null;
  private again = false;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly dir: string, private readonly store: Store, private readonly log: Logger, private readonly onApplied: () => void, private readonly admission: AdmissionContext) {
    this.dir = path.resolve(dir);
    this.id = `folder:${this.dir}`;
  }

  async start(): Promise<void> {
    this.watcher = chokidar.watch(this.dir, { ignoreInitial: true, ignored: (p) => path.basename(p).startsWith('.') && p !== this.dir });
    this.watcher.on('all', () => this.schedule());
    this.watcher.on('error', (e) => this.log.warn({ source: this.id, err: String(e) }, 'watching failed'));
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    await this.sync();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.sync(), FOLDER_DEBOUNCE_MS);
  }

  /** Reads and applies the folder now (one sync at a time; a change during one runs another after it). */
  async sync(): Promise<SyncOutcome> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.syncing = this.syncOnce().catch((e: Error) => {
      // Nothing of this sync was saved: log it and read the folder again soon, rather than
      // leaving a floating rejection (which ends the daemon) or waiting for the next change.
      this.log.error({ source: this.id, err: e.message }, `folder sync failed; retrying in ${FOLDER_RETRY_MS / 1000}s`);
      if (!this.stopped) this.retry = setTimeout(() => void this.sync(), FOLDER_RETRY_MS);
      return { ok: false, lines: [`failed to apply ${this.id}: ${e.message}`] };
    }).finally(() => {
      this.syncing = null;
      if (this.again) {
        this.again = false;
        void this.sync();
      }
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<SyncOutcome> {
    let texts;
    try {
      // A missing folder is an error, not an empty set: it must never prune everything.
      texts = readManifestInputs([this.dir], { allowEmpty: true });
    } catch (e) {
      const message = (e as CarteError).message ?? String(e);
      await recordSourceError(this.store, this.id, message, null);
      return { ok: false, lines: [message] };
    }
    // Build contexts must stay inside the watched folder (readManifestInputs makes it every manifest's root).
    const outcome = await syncTexts(this.store, this.id, texts, null, this.admission);
    this.log.info({ source: this.id, ok: outcome.ok, changes: outcome.lines }, outcome.ok ? 'folder synced' : 'folder refused');
    if (outcome.ok) this.onApplied();
    return outcome;
  }

  /** Admits the folder again (the server policy changed): the same as a sync. */
  readmit(): Promise<SyncOutcome> {
    return this.sync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.retry) clearTimeout(this.retry);
    await this.watcher?.close();
    await this.syncing;
  }
}
