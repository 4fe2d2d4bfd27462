// The desired-state store: one JSON file under CARTE_HOME.
// Readers take a consistent snapshot without locking (the file is only ever
// replaced whole); writers go through `update`, which holds the cross-process
// lock, re-reads the file, applies a change and writes it back atomically.
//
// Every file carries a checksum of its own bytes (state-file.ts), and every
// write keeps the file it replaces as a generation (generations.ts). A read
// that finds state.json damaged takes the lock, looks again, and puts the
// newest good generation back in its place, keeping the damaged file beside
// it and saying so in an event. Nothing else in carte needs to know.
import fs from 'node:fs';
import path from 'node:path';
import { CarteError, NotFoundError } from '../errors.js';
import { removeLeftovers, writeFileDurably } from '../util/durable-json-file.js';
import { acquireLock, STALE_MS, type LockOptions } from '../util/lock.js';
import { checkFile, Generations, GENERATIONS_KEPT, keepDamaged, type FileCheck } from './generations.js';
import { encodeState } from './state-file.js';
import { emptyState, recordEvent, type StateData, type StateRecovery } from './state.js';

export const DEFAULT_HOME = '/var/lib/carte';

/** What a recovery did, for the daemon's log and the CLI's warning. */
export interface RecoveryInfo extends StateRecovery {
  /** When the restored generation had been written. */
  generationWrittenAt: string | null;
  /** One sentence for people: what was wrong, what was restored, where the damaged file is. */
  message: string;
}

export interface StoreOptions {
  /** Called after a damaged state.json was replaced by a kept generation. */
  onRecover?: (info: RecoveryInfo) => void;
  /** The clock for writtenAt, events and damaged-file names (tests pin it). */
  now?: () => Date;
  /** Generations kept (default GENERATIONS_KEPT; 0 keeps none, for benchmarks). */
  generations?: number;
}

export interface RestoreResult {
  /** The file restored (a generation, or a file given by path). */
  from: FileCheck;
  /** The generation the restored state was written as. */
  generation: number;
  /** Where the damaged state.json was set aside, when it was damaged. */
  damagedFile: string | null;
}

/** state.json as a writer or reader found it. */
type Current =
  | { kind: 'absent' }
  | { kind: 'ok'; check: FileCheck; data: StateData }
  | { kind: 'damaged'; check: FileCheck };

const EVENT_OBJECT = 'store/state';

/**
 * The error of an update whose lock proper-lockfile declared compromised: the
 * process stalled past the lock's stale time, so another writer may have
 * taken it over. state.json is whole either way (it is only ever replaced by
 * a rename); the caller retries the update.
 */
function lostLock(while_: 'changing' | 'writing', lockPath: string, mayHaveRaced: boolean, cause?: unknown): CarteError {
  const what = mayHaveRaced
    ? 'the change may have raced another writer and been lost or overwritten; state.json is whole'
    : 'nothing was written';
  return new CarteError('store-locked',
    `failed to update state: lost the store lock ${lockPath} while ${while_} state (this process stalled past the lock's ${STALE_MS / 1000}s stale time, so another writer may have taken it over); ${what}; retry the update`,
    cause === undefined ? undefined : { cause });
}

export class Store {
  readonly file: string;
  readonly lockPath: string;
  readonly generations: Generations;
  private readonly now: () => Date;
  private readonly keep: number;

  private constructor(readonly home: string, private readonly opts: StoreOptions) {
    this.file = path.join(home, 'state.json');
    this.lockPath = path.join(home, 'state.lock');
    this.generations = new Generations(path.join(home, 'generations'));
    this.now = opts.now ?? (() => new Date());
    this.keep = opts.generations ?? GENERATIONS_KEPT;
  }

  /** Opens (and creates, mode 0700) the store folder. */
  static open(home: string, opts: StoreOptions = {}): Store {
    try {
      fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new CarteError('io', `failed to create CARTE_HOME ${home}: ${(e as Error).message} (set CARTE_HOME or --home to a writable folder)`, { cause: e });
    }
    return new Store(home, opts);
  }

  private async current(): Promise<Current> {
    const check = await checkFile(this.file);
    if (!check) {
      // A home that has written state before never starts over empty because the file went
      // missing (moved away, deleted by hand): an empty state would remove every instance.
      if ((await this.generations.list()).length === 0) return { kind: 'absent' };
      return { kind: 'damaged', check: { path: this.file, generation: null, writtenAt: null, size: 0, problem: 'missing (removed or moved away after carte wrote it)', data: null } };
    }
    return check.problem === null ? { kind: 'ok', check, data: check.data! } : { kind: 'damaged', check };
  }

  /** A snapshot of the state; changes to it are not saved. Recovers a damaged file first. */
  async read(): Promise<StateData> {
    const cur = await this.current();
    if (cur.kind === 'ok') return cur.data;
    if (cur.kind === 'absent') return emptyState();
    // Damaged: recover under the lock, unless another process got there first.
    const lock = await acquireLock(this.lockPath);
    try {
      const again = await this.current();
      if (again.kind === 'ok') return again.data;
      if (again.kind === 'absent') return emptyState();
      try {
        return await this.recoverLocked(again);
      } catch (e) {
        // The recovery could not be written (a full disk): a reader still gets the newest good
        // generation, read-only; the next read or write tries the recovery again.
        const fallback = (e as CarteError).code === 'io' ? (await this.generations.newestGood()).good : null;
        if (!fallback) throw e;
        return fallback.data!;
      }
    } finally {
      await lock.release();
    }
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
      await removeLeftovers(this.file);
      let cur = await this.current();
      if (cur.kind === 'damaged') {
        await this.recoverLocked(cur);
        cur = await this.current();
        if (cur.kind !== 'ok') throw new CarteError('store-corrupt', `failed to read state file ${this.file}: it is damaged again right after a recovery; check the disk (dmesg)`);
      }
      const data = cur.kind === 'ok' ? cur.data : emptyState();
      const result = await change(data);
      if (lock.compromised) throw lostLock('changing', this.lockPath, false);
      try {
        // Checked again just before the rename: a writer that lost the lock while writing
        // its temporary file does not replace the file another writer may have written.
        await this.writeLocked(data, cur, null, () => {
          if (lock.compromised) throw lostLock('writing', this.lockPath, false);
        });
      } catch (e) {
        if (lock.compromised && (e as CarteError).code !== 'store-locked') throw lostLock('writing', this.lockPath, true, e);
        throw e;
      }
      // The rename happened, but the lock was lost during the write: another writer may have
      // read the file before it and written over it, losing this change. Say so; a retry is safe.
      if (lock.compromised) throw lostLock('writing', this.lockPath, true);
      return result;
    } finally {
      await lock.release();
    }
  }

  /** state.json and every kept generation, checked; changes nothing (no recovery). */
  async verify(): Promise<{ current: FileCheck | null; generations: FileCheck[] }> {
    return { current: await checkFile(this.file), generations: await this.generations.checkAll() };
  }

  /**
   * Makes a kept generation (default: the newest good one), or a state file
   * given by path, the current state: a new write under the lock, so the file
   * it replaces is kept as a generation (or set aside, if damaged). The event
   * log of a good current state is kept, so the restore itself stays visible.
   */
  async restore(from?: number | string, opts: LockOptions = {}): Promise<RestoreResult> {
    const lock = await acquireLock(this.lockPath, opts);
    try {
      await removeLeftovers(this.file);
      const cur = await this.current();
      const source = await this.restoreSource(from);
      const what = typeof from === 'string' ? `${source.path} (generation ${source.generation ?? '?'})` : `generation ${source.generation}`;
      if (source.problem !== null) {
        throw new CarteError('store-corrupt', `failed to restore ${what}: it is ${source.problem}; "carte state verify" lists the good ones`);
      }
      const data = source.data!;
      if (cur.kind === 'ok') {
        data.events = cur.data.events;
        data.nextEventSeq = cur.data.nextEventSeq;
        if (cur.data.recovery) data.recovery = cur.data.recovery;
        else delete data.recovery;
      }
      const now = this.now();
      const damagedFile = cur.kind === 'damaged' ? await keepDamaged(this.file, now) : null;
      recordEvent(data, now, {
        type: 'Normal', object: EVENT_OBJECT, reason: 'StateRestored',
        message: `restored ${what} written at ${source.writtenAt ?? 'an unknown time'}${damagedFile ? `; the damaged state.json is kept at ${damagedFile}` : ''}`,
      });
      const generation = await this.writeLocked(data, cur, cur.kind === 'damaged' ? cur.check : null);
      return { from: source, generation, damagedFile };
    } finally {
      await lock.release();
    }
  }

  private async restoreSource(from: number | string | undefined): Promise<FileCheck> {
    if (typeof from === 'number') {
      const c = await checkFile(this.generations.pathOf(from), from);
      if (!c) throw new NotFoundError(`failed to restore generation ${from}: ${this.generations.pathOf(from)} does not exist; "carte state verify" lists the kept generations`);
      return c;
    }
    if (typeof from === 'string') {
      const c = await checkFile(path.resolve(from));
      if (!c) throw new NotFoundError(`failed to restore ${from}: no such file`);
      return c;
    }
    const { good, damaged } = await this.generations.newestGood();
    if (!good) {
      throw new CarteError('store-corrupt', `failed to restore state: ${damaged.length ? `all ${damaged.length} generations in ${this.generations.dir} are damaged` : `${this.generations.dir} holds no generation`}; ` +
        'restore a copy you trust with "carte state restore FILE"');
    }
    return good;
  }

  /**
   * Replaces the damaged state.json with the newest good generation. Under the
   * lock. With no good generation, nothing is touched and the error says what
   * a person can do.
   */
  private async recoverLocked(cur: Extract<Current, { kind: 'damaged' }>): Promise<StateData> {
    const reason = cur.check.problem!;
    const { good, damaged } = await this.generations.newestGood();
    if (!good) {
      const kept = damaged.length ? `all ${damaged.length} generations in ${this.generations.dir} are damaged` : `${this.generations.dir} holds none`;
      throw new CarteError('store-corrupt',
        `failed to read state file ${this.file}: it is ${reason}; no good generation to recover from (${kept}): ` +
        'restore a copy you trust with "carte state restore FILE", or move it away to start empty',
        { details: damaged.map((d) => `${d.path}: damaged: ${d.problem}`) });
    }
    const now = this.now();
    const damagedFile = await keepDamaged(this.file, now);
    const data = good.data!;
    const recovery: StateRecovery = { at: now.toISOString(), generation: good.generation!, reason, damagedFile };
    const message = `state.json was ${damagedFile ? `damaged (${reason})` : reason}; restored generation ${recovery.generation} written at ${good.writtenAt ?? 'an unknown time'}` +
      (damagedFile ? `; the damaged file is kept at ${damagedFile}` : '');
    data.recovery = recovery;
    recordEvent(data, now, { type: 'Warning', object: EVENT_OBJECT, reason: 'StateRecovered', message });
    await this.writeLocked(data, cur, cur.check);
    this.opts.onRecover?.({ ...recovery, generationWrittenAt: good.writtenAt, message });
    return data;
  }

  /**
   * Writes `data` as the next generation over `cur` (what state.json held
   * when read under this lock): a good current file is kept as a generation
   * first; a damaged one has been set aside by the caller (and is passed so
   * the new generation is numbered after what it claimed to be). Returns the
   * generation written.
   */
  private async writeLocked(data: StateData, cur: Current, damaged: FileCheck | null = null, stillHeld?: () => void): Promise<number> {
    const listed = await this.generations.list();
    const before = cur.kind === 'ok' ? (cur.data.generation ?? 0) : (damaged?.generation ?? 0);
    const generation = Math.max(before, listed[0] ?? 0) + 1;
    data.generation = generation;
    data.writtenAt = this.now().toISOString();
    const keepCurrent = cur.kind === 'ok' && this.keep > 0;
    await writeFileDurably(this.file, encodeState(data), {
      beforeRename: async () => {
        stillHeld?.();
        if (keepCurrent) await this.generations.keep(this.file, before);
      },
    });
    if (this.keep > 0) await this.generations.prune(this.keep);
    return generation;
  }
}
