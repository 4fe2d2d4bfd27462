// A lowdb adapter that survives crashes: write a temporary file, fsync it,
// rename it over the old one, fsync the folder. A process killed at any
// instant leaves either the old file or the new one, never a torn mix
// (lowdb's own JSONFile renames too, but does not fsync, so a power cut can
// leave an empty file behind the rename).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { CarteError } from '../errors.js';
import { spaceOf } from './disk.js';
import { STALE_MS } from './lock.js';

/** The temporary file a writer of `file` uses; `removeLeftovers` finds killed writers' ones by this shape. */
const tmpPrefix = (file: string) => `.${path.basename(file)}.`;

/**
 * Every write has its own temporary file (pid and a counter): two writes of
 * one process can overlap when a stalled writer's lock was taken over by
 * another in the same process, and with a shared name the second removed or
 * replaced the first's file (its rename failed with ENOENT).
 */
let writes = 0;
/** This process's temporary files being written now: never leftovers. */
const inFlight = new Set<string>();

/**
 * Removes temporary files left by writers of `file` killed mid-write. Called
 * under the writers' lock; still, a writer that stalled and lost the lock may
 * be writing its file now, so only files of no write of this process and
 * untouched for longer than the lock's stale time are leftovers.
 */
export async function removeLeftovers(file: string, now = Date.now()): Promise<void> {
  const dir = path.dirname(file);
  const prefix = tmpPrefix(file);
  for (const name of await fs.readdir(dir)) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const p = path.join(dir, name);
    if (inFlight.has(p)) continue;
    const st = await fs.stat(p).catch(() => null);
    if (st && now - st.mtimeMs > STALE_MS) await fs.rm(p, { force: true });
  }
}

export interface DurableWriteOptions {
  /**
   * Runs after the new content is safely on disk and before it replaces the
   * old file (the store keeps the old file as a generation here). If it throws,
   * the old file stays and the temporary one is removed.
   */
  beforeRename?: () => Promise<void>;
}

/**
 * Replaces `file` with `text`, durably and atomically. A write that fails
 * (disk full, quota, I/O error) removes its temporary file and leaves the old
 * file exactly as it was: a partial file is never renamed over it.
 */
export async function writeFileDurably(file: string, text: string | Uint8Array, opts: DurableWriteOptions = {}): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `${tmpPrefix(file)}${process.pid}.${++writes}.tmp`);
  inFlight.add(tmp);
  try {
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(text);
      // Without this a power cut after the rename can leave an empty file (ext4 delayed allocation).
      await handle.sync();
    } finally {
      await handle.close();
    }
    await opts.beforeRename?.();
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw writeError(file, e);
  } finally {
    inFlight.delete(tmp);
  }
  const dirHandle = await fs.open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** The error of a failed write, saying what the disk needs when the disk is the cause. */
function writeError(file: string, e: unknown): unknown {
  if (e instanceof CarteError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const where = () => {
    const space = spaceOf(path.dirname(file));
    return space ? ` (${space.freeBytes} bytes free on ${space.mount})` : '';
  };
  const unchanged = 'nothing was changed';
  let why: string;
  switch (code) {
    case 'ENOSPC':
      why = `no space left on device${where()}; free some space — ${unchanged}`;
      break;
    case 'EDQUOT':
      why = `disk quota exceeded${where()}; free some space or raise the quota — ${unchanged}`;
      break;
    case 'EIO':
      why = `input/output error (the disk may be failing; check dmesg) — ${unchanged}`;
      break;
    default:
      why = `${(e as Error).message} — ${unchanged}`;
  }
  return new CarteError('io', `failed to write state file ${file}: ${why}`, { cause: e });
}

export class DurableJsonFile<T> implements Adapter<T> {
  constructor(private readonly file: string) {}

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await fs.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new CarteError('io', `failed to read state file ${this.file}: ${(e as Error).message}`, { cause: e });
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new CarteError('store-corrupt',
        `failed to read state file ${this.file}: it is not valid JSON (${(e as Error).message}); ` +
        'carte only ever replaces it whole, so it was edited by hand: restore it from a backup or move it away to start empty', { cause: e });
    }
  }

  /** See the function of the same name; only safe under the writers' lock. */
  async removeLeftovers(): Promise<void> {
    await removeLeftovers(this.file);
  }

  async write(data: T): Promise<void> {
    await writeFileDurably(this.file, JSON.stringify(data, null, 1));
  }
}
