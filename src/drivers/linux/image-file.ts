// Reading a file of an image from the host (as root), e.g. /etc/passwd to
// resolve `user: nobody`. Image content is written by people who are not
// root, so a plain read of `<rootfs>/etc/passwd` would follow their symlinks
// on the host: `/etc/passwd -> /root/.ssh/id_rsa` or `../../../../etc/shadow`
// reads host files, `-> /dev/zero` allocates without end, a FIFO hangs.
//
// So: every component is resolved inside the rootfs, as if it were `/`
// (absolute links restart at the rootfs, `..` stops at it, at most 40 links
// as the kernel allows), only a regular file is opened (checked before the
// open, so no device or FIFO is ever opened, and again on the open fd, with
// O_NOFOLLOW on the last component), and at most `maxBytes` are read.
//
// Races: the rootfs is read before the container's first process exists and
// the layers are read-only to containers, so nobody but root on the host can
// swap a component between the checks and the open; the fd checks (same
// inode, regular) are a second line all the same. (openat2's RESOLVE_IN_ROOT
// would do the walk in the kernel; Node has no binding for it.)
import { constants } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import { DriverError } from '../../errors.js';

/** Links followed before giving up: the kernel's own limit (MAXSYMLINKS). */
export const MAX_LINKS = 40;

/** What a host-side read of an image file takes at most, unless told otherwise. */
export const DEFAULT_MAX_BYTES = 2 ** 20;

export type Resolved =
  | { found: true; hostPath: string; inImage: string; links: number; stat: Stats }
  | { found: false; inImage: string; links: number };

export class TooManyLinksError extends Error {}

/**
 * Resolves `file` (an absolute path inside the image) to a host path that is
 * inside `root`, following symlinks as the container would see them. The
 * last component is not followed when it is not a link; when it is missing
 * (or a component is not a folder), says so with the path it looked for.
 */
export async function resolveInRoot(root: string, file: string): Promise<Resolved> {
  let todo = file.split('/');
  // Components already resolved, none of them a link: `..` of them is their real parent.
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      done.pop(); // at the root, `..` is the root
      continue;
    }
    const hostPath = path.join(root, ...done, part);
    let stat: Stats;
    try {
      stat = await fsp.lstat(hostPath);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { found: false, inImage: inImage([...done, part, ...todo]), links };
      throw e;
    }
    if (stat.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new TooManyLinksError(`it goes through more than ${MAX_LINKS} symbolic links (a loop?)`);
      const target = await fsp.readlink(hostPath);
      if (target.startsWith('/')) done.length = 0;
      todo = [...target.split('/'), ...todo];
      continue;
    }
    if (todo.some((p) => p !== '' && p !== '.') && !stat.isDirectory()) return { found: false, inImage: inImage([...done, part, ...todo]), links };
    done.push(part);
    if (!todo.some((p) => p !== '' && p !== '.')) return { found: true, hostPath, inImage: inImage(done), links, stat };
  }
  return { found: true, hostPath: root, inImage: '/', links, stat: await fsp.lstat(root) };
}

const inImage = (parts: string[]) => `/${parts.filter((p) => p !== '' && p !== '.').join('/')}`;

function kind(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

function size(n: number): string {
  const [unit, scale] = n >= 2 ** 20 ? ['MiB', 2 ** 20] : n >= 1024 ? ['KiB', 1024] : ['bytes', 1];
  return `${n % scale === 0 ? n / scale : (n / scale).toFixed(1)} ${unit}`;
}

/**
 * The text of `file` in the image whose rootfs is at `rootfs`, or null when
 * the image has no such file. Anything else that is not a regular file of
 * at most `maxBytes` is a DriverError naming the file and the image:
 * "failed to read /etc/passwd of image test/evil:1: it is a link to
 * /dev/zero, which is a character device, not a regular file".
 */
export async function readImageFile(rootfs: string, file: string, opts: { image: string; maxBytes?: number }): Promise<string | null> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const fail = (cause: string) => new DriverError('read', `${file} of image ${opts.image}`, cause);
  let r: Resolved;
  try {
    r = await resolveInRoot(rootfs, file);
  } catch (e) {
    if (e instanceof TooManyLinksError) throw fail(e.message);
    throw fail((e as Error).message);
  }
  const it = r.links ? `it is a link to ${r.inImage}, which` : 'it';
  if (!r.found) {
    // A missing file is an answer ("no /etc/group"); a link to nothing is a mistake worth naming.
    if (!r.links) return null;
    throw fail(`${it} does not exist in the image`);
  }
  if (!r.stat.isFile()) throw fail(`${it} is ${kind(r.stat)}, not a regular file`);
  const tooBig = (bytes: number) => fail(`${it} is ${size(bytes)}, more than the ${size(maxBytes)} carte reads from an image file`);
  if (r.stat.size > maxBytes) throw tooBig(r.stat.size);
  // O_NONBLOCK and O_NOCTTY: should the file have been swapped for a FIFO or a tty since the check, opening it neither hangs nor takes a terminal.
  const fh = await fsp.open(r.hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY).catch((e: Error) => {
    throw fail(e.message);
  });
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.ino !== r.stat.ino || st.dev !== r.stat.dev) throw fail(`${file} changed while it was read`);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw tooBig(st.size);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}
