// One OCI layer blob (a tar, maybe gzip or zstd) unpacked into a staged
// carte layer: entries judged as `ADD` judges archives (no absolute paths,
// no `..`, no hard link out, no devices or FIFOs), except that symbolic
// links may point anywhere (an image's `/bin/sh -> /bin/busybox` is resolved
// in the container's root; carte's host-side reads of image files resolve
// them the same way, see image-file.ts), and `.wh.` entries turned into
// overlayfs whiteouts and opaque folders. The uncompressed stream's sha256
// (the diff_id) is computed on the way, and its size bounded.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { CarteError } from '../../../errors.js';
import { archiveEntryRefusal } from './archive.js';
import { normalizeEntry, whiteoutMeaning, type Compression } from './oci-spec.js';
import { makeWhiteout, markOpaque } from './overlay-marks.js';

/** No layer unpacks to more than this (a gzip bomb stops here). */
export const MAX_LAYER_BYTES = 64 * 2 ** 30;

/** Why an OCI layer entry may not be unpacked, or null. Symbolic links are resolved in the container's root, so any target is fine. */
export function layerEntryRefusal(entry: { path: string; type: string; linkpath?: string }): string | null {
  if (entry.type === 'SymbolicLink') return archiveEntryRefusal({ ...entry, linkpath: '.' });
  return archiveEntryRefusal(entry);
}

/** The sha256 (hex) and size of a file. */
export async function sha256File(file: string): Promise<{ hex: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { hex: hash.digest('hex'), size };
}

/**
 * The blob's content, decompressed, as pipeline stages (so a read or
 * decompression error fails the pipeline). zstd goes through the zstd tool
 * (Node 20's zlib has none); `done` settles when it has exited.
 */
function decompressed(blob: string, compression: Compression, what: string): { stages: NodeJS.ReadWriteStream[] | NodeJS.ReadableStream[]; done: Promise<void> } {
  const source = fs.createReadStream(blob);
  if (compression === 'none') return { stages: [source], done: Promise.resolve() };
  if (compression === 'gzip') return { stages: [source, zlib.createGunzip()], done: Promise.resolve() };
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(new CarteError('image', e.code === 'ENOENT' ? `${what} is zstd-compressed, which needs the zstd tool (Debian package zstd; scripts/setup.sh installs it)` : `${what}: zstd failed: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new CarteError('image', `${what} is not valid zstd data (${stderr.trim() || `zstd exited ${code}`})`))));
  });
  // The feeding side ends when zstd exits early (bad data): its error is the exit status above.
  pipeline(source, child.stdin).catch(() => {});
  return { stages: [child.stdout], done };
}

interface Recorded {
  mode: number;
  type: string;
}

/**
 * Unpacks a layer blob into `dest` (an empty staging folder). Returns the
 * diff_id (sha256 hex of the uncompressed tar). Throws a CarteError naming
 * `what` on any refused entry or unreadable data; the caller throws the
 * folder away.
 */
export async function unpackLayer(blob: string, compression: Compression, dest: string, what: string, maxBytes = MAX_LAYER_BYTES): Promise<{ diffId: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > maxBytes) return cb(new CarteError('image', `${what} unpacks to more than ${maxBytes} bytes; refused`));
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  let refusal: string | null = null;
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  const entries = new Map<string, Recorded>();
  // Symbolic links are made after node-tar is done, with their targets as
  // written: node-tar makes absolute targets relative and drops those
  // climbing above the layer, both fine in a container's root.
  const links = new Map<string, DeferredLink>();
  const unpack = new tar.Unpack({
    cwd: dest,
    preserveOwner: true,
    preservePaths: false,
    filter: (_p, entry) => {
      if (!('type' in entry)) return false;
      const why = layerEntryRefusal(entry);
      refusal ??= why;
      if (why !== null || refusal !== null) return false;
      const meaning = whiteoutMeaning(entry.path);
      if (meaning.kind === 'whiteout') whiteouts.push(meaning.target);
      if (meaning.kind === 'opaque') opaque.push(meaning.dir);
      if (meaning.kind !== 'plain') return false;
      // The last entry of a name wins; a link's mode is not its own to set.
      const rel = normalizeEntry(entry.path);
      entries.delete(rel);
      links.delete(rel);
      if (entry.type === 'SymbolicLink') {
        links.set(rel, { target: entry.linkpath ?? '', uid: entry.uid ?? 0, gid: entry.gid ?? 0 });
        return false;
      }
      if (entry.type !== 'Link') entries.set(rel, { mode: (entry.mode ?? 0o644) & 0o7777, type: entry.type });
      return true;
    },
    onwarn: (code, message) => {
      if (code !== 'TAR_ENTRY_INFO') refusal ??= `an entry that could not be unpacked (${message})`;
    },
  });
  const { stages, done } = decompressed(blob, compression, what);
  try {
    await Promise.all([pipeline([...stages, counter, unpack as unknown as NodeJS.WritableStream]), done]);
  } catch (e) {
    if (e instanceof CarteError) throw e;
    throw new CarteError('image', `${what} is not a readable tar archive (${(e as Error).message})`, { cause: e });
  }
  if (refusal !== null) throw new CarteError('image', `${what} holds ${refusal}`);
  // Exact modes (node-tar leaves them to the umask, adds u+rwx to folders, and chown clears setuid bits).
  for (const [rel, r] of entries) {
    if (rel === '') continue;
    const full = path.join(dest, rel);
    if ((await fsp.lstat(full)).isSymbolicLink()) continue;
    await fsp.chmod(full, r.mode);
  }
  for (const [rel, l] of links) {
    const why = await placeSymlink(dest, rel, l);
    if (why !== null) throw new CarteError('image', `${what} holds ${why}`);
  }
  for (const dir of opaque) {
    const full = await insideLayer(dest, dir, what);
    const st = await fsp.lstat(full).catch(() => null);
    if (!st) await fsp.mkdir(full, { recursive: true, mode: 0o755 });
    else if (!st.isDirectory()) throw new CarteError('image', `${what} marks ${dir} opaque, but it is not a folder`);
    await markOpaque(full);
  }
  for (const target of whiteouts) {
    const full = await insideLayer(dest, target, what);
    // A name this same layer also adds wins over its whiteout (the whiteout only hides lower layers).
    if (await fsp.lstat(full).then(() => true, () => false)) continue;
    await fsp.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
    await makeWhiteout(full);
  }
  return { diffId: hash.digest('hex'), bytes };
}

export interface DeferredLink {
  target: string;
  uid: number;
  gid: number;
}

/**
 * Makes the symbolic link `rel` → `link.target` in an unpacked tree, after
 * the rest of it (so nothing was written through it). Returns why it could
 * not (completing "… holds …"), or null.
 */
export async function placeSymlink(dest: string, rel: string, link: DeferredLink): Promise<string | null> {
  const parts = rel.split('/').filter((p) => p && p !== '.');
  if (!parts.length || parts.includes('..')) return `"${rel}", which climbs out with ".."`;
  let at = dest;
  for (const part of parts.slice(0, -1)) {
    at = path.join(at, part);
    const st = await fsp.lstat(at).catch(() => null);
    if (st?.isSymbolicLink()) return `"${rel}", below ${path.relative(dest, at)}, a symbolic link`;
  }
  const full = path.join(dest, ...parts);
  const st = await fsp.lstat(full).catch(() => null);
  if (st?.isDirectory()) return `"${rel}" both as a symbolic link and as a folder`;
  if (st) await fsp.unlink(full);
  await fsp.mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
  await fsp.symlink(link.target, full);
  await fsp.lchown(full, link.uid, link.gid);
  return null;
}

/** The host path of `rel` in the layer, refusing when a folder on the way is a symbolic link (it would lead out). */
async function insideLayer(dest: string, rel: string, what: string): Promise<string> {
  const parts = rel.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new CarteError('image', `${what} holds "${rel}", which climbs out with ".."`);
  let at = dest;
  for (const part of parts.slice(0, -1)) {
    at = path.join(at, part);
    const st = await fsp.lstat(at).catch(() => null);
    if (st?.isSymbolicLink()) throw new CarteError('image', `${what} holds "${rel}", below ${path.relative(dest, at)}, a symbolic link`);
  }
  return path.join(dest, ...parts);
}
