// Build-context sources (COPY/ADD without --from) and the context's own files
// (Cartefile, .carteignore), kept inside the context: the author owns the
// context, not the machine, and a symbolic link is the way out of it.
//
// A named source is resolved (followed) inside the context, as Docker's
// COPY follows its source: `COPY conf/ /etc/app/` with conf → shared/conf
// copies the folder's contents. Links *inside* a copied folder are kept as
// links (never read through, so what they point at is never copied), but
// each must stay inside the context where it is, and inside the image where
// it lands: a link that climbs above the image's root from its place would
// point into the host when carte reads the image from outside (the rootfs
// is a host folder before the container starts).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { resolvePath } from '../../../util/resolve-path.js';
import { isWithin } from './host-policy.js';
import type { IgnoreMatcher } from './ignore.js';

/** A relative link `text` placed in image folder `imageDir` climbs above the image's root (an absolute one cannot). */
export function climbsAboveRoot(imageDir: string, text: string): boolean {
  if (text.startsWith('/')) return false;
  let depth = imageDir.split('/').filter((c) => c && c !== '.').length;
  for (const c of text.split('/')) {
    if (c === '..') depth--;
    else if (c && c !== '.') depth++;
    if (depth < 0) return true;
  }
  return false;
}

export type ContextSource =
  | { kind: 'found'; real: string; isDir: boolean }
  | { kind: 'missing' }
  /** `reason` completes "COPY SRC… DEST: …". */
  | { kind: 'refused'; reason: string };

const linkOut = (root: string, link: string, target: string) => `${path.relative(root, link)} is a link to ${target}, outside the build context`;

/**
 * Resolves `rel` (relative, already normalized, so `..` never leaves it)
 * inside `root`, the context's real path; every link on the way must point
 * inside the context.
 */
export async function resolveContextSource(root: string, rel: string): Promise<ContextSource> {
  const res = await resolvePath(root, rel, (hop) => (isWithin(hop.target, root) ? null : 'outside'));
  switch (res.kind) {
    case 'refused':
      return { kind: 'refused', reason: linkOut(root, res.hop.link, res.hop.target) };
    case 'missing':
      return { kind: 'missing' };
    case 'loop':
      return { kind: 'refused', reason: `${path.relative(root, res.at)} is a loop of symbolic links` };
    case 'found': {
      if (!isWithin(res.real, root)) return { kind: 'refused', reason: `${rel} is outside the build context` };
      const st = await fsp.stat(res.real);
      return { kind: 'found', real: res.real, isDir: st.isDirectory() };
    }
  }
}

/**
 * Checks the links a folder copy keeps (as links): `real` is the folder's real
 * path, `named` its context-relative name (for .carteignore and messages),
 * `dest` where its contents land in the image. Null when all is well.
 */
export async function folderLinksRefusal(root: string, real: string, named: string, dest: string, ignored: IgnoreMatcher): Promise<string | null> {
  for (const e of (await fsp.readdir(real, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = named ? `${named}/${e.name}` : e.name;
    if (ignored(rel)) continue;
    const full = path.join(real, e.name);
    const inImage = path.posix.join(dest, e.name);
    if (e.isDirectory()) {
      const inner = await folderLinksRefusal(root, full, rel, inImage, ignored);
      if (inner) return inner;
      continue;
    }
    if (!e.isSymbolicLink()) continue;
    const text = await fsp.readlink(full);
    const target = path.resolve(real, text);
    if (!isWithin(target, root)) return `${rel} is a link to ${target}, outside the build context`;
    if (climbsAboveRoot(path.posix.dirname(inImage), text)) return `${rel} is a link to ${text}, which climbs above the image's root from ${inImage}`;
    // The text stays inside; so must every link it goes through. A link to nothing (yet) is kept as it is.
    const res = await resolvePath(real, text, (hop) => (isWithin(hop.target, root) ? null : 'outside'));
    if (res.kind === 'refused') return linkOut(root, res.hop.link, res.hop.target);
    if (res.kind === 'found' && !isWithin(res.real, root)) return `${rel} is a link to ${res.real}, outside the build context`;
  }
  return null;
}

export type ContextFile = { kind: 'text'; text: string } | { kind: 'absent' } | { kind: 'refused'; reason: string };

/**
 * Reads a file that steers the build (`what`: "the Cartefile", "the
 * .carteignore"); `file` is absolute. It is never a link (a Cartefile linked
 * to /etc/shadow would print its first word in the parse error). Inside the
 * context every link on the way must stay inside it; a Cartefile outside the
 * context (`-f`, as the metaverse demo keeps its Cartefiles apart from the
 * compiled sources) must be readable by every user, as host files must.
 * O_NOFOLLOW closes the gap between the check and the open; O_NONBLOCK keeps
 * a FIFO from hanging the build.
 */
export async function readContextFile(root: string, contextPath: string, file: string, what: string): Promise<ContextFile> {
  const rel = path.relative(contextPath, file);
  let real: string;
  if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) {
    const dir = await fsp.realpath(path.dirname(file)).catch(() => null);
    if (!dir) return { kind: 'absent' };
    real = path.join(dir, path.basename(file));
  } else {
    const dir = await resolveContextSource(root, path.dirname(rel));
    if (dir.kind === 'refused') return dir;
    if (dir.kind === 'missing' || !dir.isDir) return { kind: 'absent' };
    real = path.join(dir.real, path.basename(rel));
  }
  const st = await fsp.lstat(real).catch(() => null);
  if (!st) return { kind: 'absent' };
  const link = { kind: 'refused', reason: `${what} is a symbolic link; it must be a regular file` } as const;
  if (st.isSymbolicLink()) return link;
  if (!st.isFile()) return { kind: 'refused', reason: `${what} is not a regular file` };
  if (!isWithin(real, root)) {
    const closed = await firstClosed(real);
    if (closed) {
      const mode = ((await fsp.stat(closed)).mode & 0o7777).toString(8).padStart(4, '0');
      return { kind: 'refused', reason: `${what} is outside the build context and ${closed} is not readable by every user (mode ${mode}), so a build may not read it` };
    }
  }
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') return link;
    return { kind: 'absent' };
  }
  try {
    if (!(await handle.stat()).isFile()) return { kind: 'refused', reason: `${what} is not a regular file` };
    return { kind: 'text', text: await handle.readFile('utf8') };
  } finally {
    await handle.close();
  }
}

/** The file itself when others may not read it, or the first folder above it others may not enter; null when all are open. */
async function firstClosed(real: string): Promise<string | null> {
  if (!((await fsp.stat(real)).mode & 0o004)) return real;
  for (let dir = path.dirname(real); dir !== '/'; dir = path.dirname(dir)) {
    if (!((await fsp.stat(dir)).mode & 0o001)) return dir;
  }
  return null;
}
