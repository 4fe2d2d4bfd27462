// Copying a build context's files into a layer so that what is copied is what
// was judged. The context is the author's folder: while carte copies it, the
// author may swap a folder for a link to /etc (an outside test won that race
// against a copy by name in 5 of 150 builds and got /etc/shadow into its
// image). So every file and folder is opened without following a link and
// kept only if the kernel says the opened object is at the path carte meant
// (/proc/self/fd/N reads back the real path: a link swapped in anywhere on
// the way shows as the place it leads to). Folders are listed through their
// open descriptor, files read from theirs, links recreated (never read
// through) after their target is checked again.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isWithin } from './host-policy.js';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY, O_NOCTTY } = fs.constants;

export interface VerifiedCopyOptions {
  /** The context's real path: links must point inside it. */
  root: string;
  /** False for a path to leave out (.carteignore); `src` is absolute. */
  keep: (src: string) => boolean;
  /** Says why a copy is refused; never returns. */
  refuse: (reason: string) => never;
}

/** Opens `p` without following a final link and checks the kernel places it at `p`; null when it is a link. */
async function openPinned(p: string, dir: boolean, opts: VerifiedCopyOptions): Promise<fsp.FileHandle | null> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | (dir ? O_DIRECTORY : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return null; // a link now: judged as a link by the caller
    opts.refuse(`${path.relative(opts.root, p) || '.'} changed while it was being copied (${code ?? (e as Error).message}); build again`);
  }
  const at = await fsp.readlink(`/proc/self/fd/${fh.fd}`).catch(() => '');
  if (at !== p) {
    await fh.close();
    opts.refuse(`${path.relative(opts.root, p) || '.'} changed while it was being copied (it now leads to ${at || 'a place carte cannot name'}); build again`);
  }
  return fh;
}

async function copyLink(src: string, dst: string, opts: VerifiedCopyOptions): Promise<void> {
  const text = await fsp.readlink(src);
  const target = path.resolve(path.dirname(src), text);
  if (!isWithin(target, opts.root)) opts.refuse(`${path.relative(opts.root, src)} is a link to ${text}, outside the build context`);
  await fsp.rm(dst, { force: true, recursive: true });
  await fsp.symlink(text, dst);
}

/**
 * Copies `src` (a file, folder or link under `opts.root`, by its real path)
 * to `dst`, verifying each object as it is opened. Modes are kept.
 */
export async function verifiedCopy(src: string, dst: string, opts: VerifiedCopyOptions): Promise<void> {
  if (!opts.keep(src)) return;
  const lst = await fsp.lstat(src).catch(() => null);
  if (!lst) opts.refuse(`${path.relative(opts.root, src) || '.'} disappeared while it was being copied; build again`);
  if (lst.isSymbolicLink()) return copyLink(src, dst, opts);
  if (!lst.isDirectory() && !lst.isFile()) opts.refuse(`${path.relative(opts.root, src)} is not a file, folder or link`);
  const fh = await openPinned(src, lst.isDirectory(), opts);
  if (!fh) return copyLink(src, dst, opts);
  try {
    const st = await fh.stat();
    if (st.isDirectory()) {
      await fsp.mkdir(dst, { recursive: true });
      // Listed through the descriptor: the folder carte opened, whatever its path leads to now.
      const names = (await fsp.readdir(`/proc/self/fd/${fh.fd}`)).sort();
      for (const name of names) await verifiedCopy(path.join(src, name), path.join(dst, name), opts);
      await fsp.chmod(dst, st.mode & 0o7777);
    } else if (st.isFile()) {
      await pipeline(fh.createReadStream({ autoClose: false, start: 0 }), fs.createWriteStream(dst, { mode: 0o600 }));
      await fsp.chmod(dst, st.mode & 0o7777);
    } else {
      opts.refuse(`${path.relative(opts.root, src)} is not a file, folder or link`);
    }
  } finally {
    await fh.close();
  }
}
