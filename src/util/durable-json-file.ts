// A lowdb adapter that survives crashes: write a temporary file, fsync it,
// rename it over the old one, fsync the folder. A process killed at any
// instant leaves either the old file or the new one, never a torn mix
// (lowdb's own JSONFile renames too, but does not fsync, so a power cut can
// leave an empty file behind the rename).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Adapter } from 'lowdb';
import { CarteError } from '../errors.js';

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

  private get tmpPrefix(): string {
    return `.${path.basename(this.file)}.`;
  }

  /**
   * Removes temporary files left by writers killed mid-write. Only safe while
   * holding the writers' lock: then no other write is in flight.
   */
  async removeLeftovers(): Promise<void> {
    const dir = path.dirname(this.file);
    for (const name of await fs.readdir(dir)) {
      if (name.startsWith(this.tmpPrefix) && name.endsWith('.tmp')) await fs.rm(path.join(dir, name), { force: true });
    }
  }

  async write(data: T): Promise<void> {
    const dir = path.dirname(this.file);
    const tmp = path.join(dir, `${this.tmpPrefix}${process.pid}.tmp`);
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(JSON.stringify(data, null, 1));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, this.file);
    const dirHandle = await fs.open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }
}
