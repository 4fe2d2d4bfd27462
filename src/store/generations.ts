// The files beside state.json that let the store recover from a damaged one:
// generations/state.<N>.json (the last good states, each a hard link to the
// inode a write replaced, so keeping them writes no data) and
// state.damaged-<UTC time>.json (damaged files set aside by a recovery, kept
// for a person to look at).
import fs from 'node:fs/promises';
import path from 'node:path';
import { CarteError } from '../errors.js';
import { decodeState } from './state-file.js';
import type { StateData } from './state.js';

/** Generations kept by default: enough to step over a few bad writes, small enough to never matter for space. */
export const GENERATIONS_KEPT = 10;
/** Damaged files kept beside state.json, newest first. */
export const DAMAGED_KEPT = 3;

const GENERATION_NAME = /^state\.(\d+)\.json$/;
const DAMAGED_NAME = /^state\.damaged-.*\.json$/;

/** One state file checked: the current one, a generation, or a file given to `carte state restore`. */
export interface FileCheck {
  path: string;
  /** From the file name for a generation, else from the content; null when unknown. */
  generation: number | null;
  /** From the content (`writtenAt`), else the file's mtime. */
  writtenAt: string | null;
  size: number;
  /** null when the file is good; else why not, reading after "it is" ("not valid JSON (…)"). */
  problem: string | null;
  /** The parsed state when the file is good. */
  data: StateData | null;
}

/** Reads and checks one state file; null if it does not exist. */
export async function checkFile(file: string, generation: number | null = null): Promise<FileCheck | null> {
  let size = 0;
  let mtime: string | null = null;
  try {
    const st = await fs.stat(file);
    size = st.size;
    mtime = st.mtime.toISOString();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
  }
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { path: file, generation, writtenAt: mtime, size, problem: `unreadable (${(e as Error).message})`, data: null };
  }
  const d = decodeState(text);
  if (!d.ok) return { path: file, generation: generation ?? generationIn(text), writtenAt: mtime, size, problem: d.reason, data: null };
  return { path: file, generation: generation ?? d.data.generation ?? null, writtenAt: d.data.writtenAt ?? mtime, size, problem: null, data: d.data };
}

/** The generation number a (possibly damaged) state text claims, if it can still be found. */
export function generationIn(text: string): number | null {
  const m = /\n "generation": (\d+),\n/.exec(text);
  return m ? Number(m[1]) : null;
}

export class Generations {
  constructor(readonly dir: string) {}

  pathOf(generation: number): string {
    return path.join(this.dir, `state.${generation}.json`);
  }

  /** Generation numbers kept, newest first. */
  async list(): Promise<number[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return names.flatMap((n) => {
      const m = GENERATION_NAME.exec(n);
      return m ? [Number(m[1])] : [];
    }).sort((a, b) => b - a);
  }

  /** Every kept generation checked, newest first. */
  async checkAll(): Promise<FileCheck[]> {
    const out: FileCheck[] = [];
    for (const g of await this.list()) {
      const c = await checkFile(this.pathOf(g), g);
      if (c) out.push(c); // a generation pruned meanwhile is simply gone
    }
    return out;
  }

  /** The newest generation that checks good, and every newer one that did not. */
  async newestGood(): Promise<{ good: FileCheck | null; damaged: FileCheck[] }> {
    const damaged: FileCheck[] = [];
    for (const g of await this.list()) {
      const c = await checkFile(this.pathOf(g), g);
      if (!c) continue;
      if (c.problem === null) return { good: c, damaged };
      damaged.push(c);
    }
    return { good: null, damaged };
  }

  /**
   * Keeps `current` (the state file, just checked good under the lock) as
   * generation `n`. A hard link: the writer is about to rename a new file over
   * `current`, so this inode is never written again. Where links fail
   * (a filesystem without them), a copy.
   */
  async keep(current: string, n: number): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await keepFile(current, this.pathOf(n));
  }

  /**
   * Keeps the newest `keep` generations, and beyond them the newest of each
   * minute of the last 10 minutes and of each hour of the last day. A busy
   * daemon writes several times a second (readiness, events): the newest ten
   * alone would reach back only seconds, too little to undo a mistake found
   * a minute later. Links, not copies: an old generation costs its own bytes
   * only once the state has moved on (at most 10 + 10 + 24 files).
   */
  async prune(keep: number, now = Date.now()): Promise<void> {
    const all = await this.list();
    const kept = new Set(all.slice(0, keep));
    const buckets = new Set<string>();
    for (const g of all.slice(keep)) {
      const st = await fs.stat(this.pathOf(g)).catch(() => null);
      if (!st) continue;
      const age = now - st.mtimeMs;
      const bucket = age < 10 * 60_000 ? `m${Math.floor(st.mtimeMs / 60_000)}` : age < 24 * 3_600_000 ? `h${Math.floor(st.mtimeMs / 3_600_000)}` : null;
      // Newest first: the first of a bucket is its newest.
      if (bucket !== null && !buckets.has(bucket)) {
        buckets.add(bucket);
        kept.add(g);
      }
    }
    for (const g of all) if (!kept.has(g)) await fs.rm(this.pathOf(g), { force: true });
  }
}

/** Links (else copies) `from` to `to`, replacing `to`; a failed copy leaves nothing behind. */
async function keepFile(from: string, to: string): Promise<void> {
  try {
    await fs.link(from, to);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      // Left by a writer killed between keeping and renaming: that was this very file.
      await fs.rm(to, { force: true });
      return keepFile(from, to);
    }
    if (code === 'ENOENT') throw e;
  }
  try {
    await fs.copyFile(from, to);
  } catch (e) {
    await fs.rm(to, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Sets the damaged `file` aside as state.damaged-<UTC time>.json beside it
 * (a link, so state.json stays in place until the recovered state is renamed
 * over it: a reader never sees it missing) and drops the oldest beyond
 * DAMAGED_KEPT. Returns where it is kept.
 */
export async function keepDamaged(file: string, at: Date): Promise<string | null> {
  const dir = path.dirname(file);
  const stamp = at.toISOString().replace(/[-:]/g, '');
  let target = path.join(dir, `state.damaged-${stamp}.json`);
  for (let i = 1; await exists(target); i++) target = path.join(dir, `state.damaged-${stamp}-${i}.json`);
  const st = await fs.lstat(file).catch(() => null);
  if (!st) return null; // missing: nothing to keep
  try {
    // Not a file (a folder, a socket put there by hand): moved aside whole, so the state can be written.
    if (!st.isFile()) await fs.rename(file, target);
    else await keepFile(file, target);
  } catch (e) {
    throw new CarteError('io', `failed to keep the damaged state file ${file} as ${target}: ${(e as Error).message}; nothing was changed`, { cause: e });
  }
  const kept = (await fs.readdir(dir)).filter((n) => DAMAGED_NAME.test(n)).sort().reverse();
  for (const n of kept.slice(DAMAGED_KEPT)) await fs.rm(path.join(dir, n), { force: true });
  return target;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
