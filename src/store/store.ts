// The desired-state store: one JSON file under CARTE_HOME, read with lowdb.
// Readers take a consistent snapshot without locking (the file is only ever
// replaced whole); writers go through `update`, which holds the cross-process
// lock, re-reads the file, applies a change and writes it back atomically.
import fs from 'node:fs';
import path from 'node:path';
import { Low } from 'lowdb';
import { CarteError } from '../errors.js';
import { DurableJsonFile } from '../util/durable-json-file.js';
import { acquireLock, type LockOptions } from '../util/lock.js';
import { emptyState, STATE_VERSION, type StateData } from './state.js';

export const DEFAULT_HOME = '/var/lib/carte';

export class Store {
  readonly file: string;
  readonly lockPath: string;

  private constructor(readonly home: string) {
    this.file = path.join(home, 'state.json');
    this.lockPath = path.join(home, 'state.lock');
  }

  /** Opens (and creates, mode 0700) the store folder. */
  static open(home: string): Store {
    try {
      fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new CarteError('io', `failed to create CARTE_HOME ${home}: ${(e as Error).message} (set CARTE_HOME or --home to a writable folder)`, { cause: e });
    }
    return new Store(home);
  }

  private async load(adapter = new DurableJsonFile<StateData>(this.file)): Promise<Low<StateData>> {
    const db = new Low<StateData>(adapter, emptyState());
    await db.read();
    if (db.data.version !== STATE_VERSION) {
      throw new CarteError('store-corrupt', `state file ${this.file} has version ${String(db.data.version)}, this carte reads version ${STATE_VERSION}`);
    }
    return db;
  }

  /** A snapshot of the state; changes to it are not saved. */
  async read(): Promise<StateData> {
    return (await this.load()).data;
  }

  private cached: { key: string; data: StateData } | null = null;

  /**
   * Like read(), but returns the same parsed object while the file is
   * unchanged (same inode, size and mtime: every write replaces the file).
   * For readers polling often (the reconciler); the result must not be changed.
   */
  async readShared(): Promise<Readonly<StateData>> {
    const st = fs.statSync(this.file, { throwIfNoEntry: false });
    const key = st ? `${st.ino}:${st.size}:${st.mtimeMs}` : 'none';
    if (this.cached?.key === key) return this.cached.data;
    const data = await this.read();
    this.cached = { key, data };
    return data;
  }

  /**
   * Runs `change` on the freshest state under the lock and saves the result.
   * If `change` throws, nothing is written: an update is all or nothing.
   */
  async update<T>(change: (data: StateData) => T | Promise<T>, opts: LockOptions = {}): Promise<T> {
    const lock = await acquireLock(this.lockPath, opts);
    try {
      const file = new DurableJsonFile<StateData>(this.file);
      await file.removeLeftovers();
      const db = await this.load(file);
      const result = await change(db.data);
      if (lock.compromised) {
        throw new CarteError('store-locked', 'lost the store lock while changing state (the process stalled for seconds); nothing was written, run the command again');
      }
      await db.write();
      return result;
    } finally {
      await lock.release();
    }
  }
}
