// OCI images in and out of carte's layer store (issue 16 part 1).
//   importOciLayout     an OCI image layout folder (index.json, oci-layout, blobs/sha256/…)
//   exportOciLayout     an image → an OCI image layout folder (gzip layers, deterministic)
//   importImageArchive  a file: an OCI archive (tar of a layout), a `docker save`
//                       archive (manifest.json + repositories), or a plain rootfs tar
//   exportOciArchive    an image → an OCI archive file (what `carte image export` writes)
// Each OCI layer becomes one carte layer (an unpacked tree used as an
// overlayfs lowerdir): OCI whiteouts become overlayfs whiteouts, so stacking
// the layers gives the image's view. Every digest is checked (blobs against
// their descriptors, unpacked layers against the config's diff_ids) and all
// layers are staged before any is added, so a refused image stores nothing.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { CarteError } from '../../../errors.js';
import { unpackArchive } from './archive.js';
import { importRootfs } from './import.js';
import { sha256File, unpackLayer } from './oci-layer.js';
import {
  IMAGE_NAME, MEDIA, REF_NAME, configFromOci, digestHex, layerCompression, ociConfigFrom, parseIndexOrManifest, parseOciConfig,
  selectFromLayout, selectPlatform, sniffCompression, type Compression, type Descriptor, type Index, type Manifest,
} from './oci-spec.js';
import { opaqueDirs } from './overlay-marks.js';
import { normalizeRef, type ImageConfig, type ImageRecord, type ImageStore } from './store.js';
import { tarStream, type TarEntry } from './tar-writer.js';

/** Index, manifest and config files are small; more than this is not one. */
const MAX_JSON_BYTES = 4 * 2 ** 20;

export interface OciImportOptions {
  /** name:tag the imported image gets. */
  tag: string;
  /** Which image of index.json: its `org.opencontainers.image.ref.name` (or `io.containerd.image.name`) annotation, or its digest (sha256:…). Default: the only one. */
  select?: string;
  /** Hears what the import is doing (one line per layer), for a progress display. */
  onProgress?: (line: string) => void;
}

function fail(message: string, exitCode?: 1 | 2): CarteError {
  return new CarteError('image', message, exitCode ? { exitCode } : {});
}

async function readSmall(file: string, what: string): Promise<string> {
  const st = await fsp.lstat(file).catch(() => null);
  if (!st) throw fail(`${what} is missing (${file})`);
  if (!st.isFile()) throw fail(`${what} is not a regular file (${file})`);
  if (st.size > MAX_JSON_BYTES) throw fail(`${what} is ${st.size} bytes, more than the ${MAX_JSON_BYTES} carte reads`);
  return fsp.readFile(file, 'utf8');
}

/** A layout's blob, checked against its descriptor: size and sha256. */
async function verifiedBlob(layoutDir: string, d: Descriptor, what: string): Promise<string> {
  const hex = digestHex(d.digest, what);
  const file = path.join(layoutDir, 'blobs', 'sha256', hex);
  const st = await fsp.lstat(file).catch(() => null);
  if (!st?.isFile()) throw fail(`${what} (${d.digest}) is missing from the layout`);
  if (st.size !== d.size) throw fail(`${what} (${d.digest}) is ${st.size} bytes, but its descriptor says ${d.size}; the image is damaged`);
  const got = await sha256File(file);
  if (got.hex !== hex) throw fail(`${what} does not match its digest: expected ${d.digest}, got sha256:${got.hex}; the image is damaged`);
  return file;
}

/** One layer to stage: its file, how it is compressed, what its uncompressed sha256 must be. */
interface LayerSource {
  file: string;
  compression: Compression;
  diffId: string;
  what: string;
}

/**
 * Stages every layer (checking its diff_id), then adds them and saves the
 * image. Nothing is added before every layer has been checked.
 */
async function storeImage(images: ImageStore, layers: LayerSource[], config: ImageConfig, tag: string, onProgress: (line: string) => void): Promise<ImageRecord> {
  const ref = normalizeRef(tag);
  if (process.getuid?.() !== 0) throw fail('importing an OCI or docker image needs root: its layers keep their owners, and whiteouts are device nodes (run it with sudo)');
  const staged: string[] = [];
  try {
    for (const l of layers) {
      const dir = await images.stagingDir();
      staged.push(dir);
      const expected = digestHex(l.diffId, `${l.what} diff_id`);
      const { diffId, bytes } = await unpackLayer(l.file, l.compression, dir, l.what);
      if (diffId !== expected) throw fail(`${l.what} does not match the config's diff_id: expected ${l.diffId}, its content is sha256:${diffId}; the image is damaged`);
      onProgress(`${l.what}: unpacked ${bytes} bytes, sha256:${diffId.slice(0, 12)} verified`);
    }
    const digests: string[] = [];
    while (staged.length) {
      digests.push((await images.addLayer(staged[0]!)).digest);
      staged.shift(); // added (renamed into the store), no longer ours to remove
    }
    return await images.save(config, digests, ref);
  } finally {
    await Promise.all(staged.map((d) => fsp.rm(d, { recursive: true, force: true })));
  }
}

/** The manifest a descriptor leads to, following indexes (linux/amd64) at most a few levels deep. */
async function resolveManifest(layoutDir: string, d: Descriptor, onProgress: (line: string) => void): Promise<{ manifest: Manifest; digest: string }> {
  for (let depth = 0; depth < 4; depth++) {
    const file = await verifiedBlob(layoutDir, d, `manifest ${d.digest}`);
    const parsed = parseIndexOrManifest(await readSmall(file, `manifest ${d.digest}`), `manifest ${d.digest}`, d.mediaType);
    if (parsed.kind === 'manifest') return { manifest: parsed.manifest, digest: d.digest };
    d = selectPlatform(parsed.index.manifests, `image index ${d.digest}`);
    onProgress(`index: picked linux/amd64 (${d.digest})`);
  }
  throw fail('the image nests indexes more than 4 deep');
}

/** Imports the image an OCI layout folder holds; verifies every digest; stores nothing when anything is wrong. */
export async function importOciLayout(images: ImageStore, layoutDir: string, opts: OciImportOptions): Promise<ImageRecord> {
  const onProgress = opts.onProgress ?? (() => {});
  normalizeRef(opts.tag);
  const marker = await readSmall(path.join(layoutDir, 'oci-layout'), 'the oci-layout file').catch(() => null);
  if (marker === null) throw fail(`${layoutDir} is not an OCI image layout (no oci-layout file)`, 2);
  const top = parseIndexOrManifest(await readSmall(path.join(layoutDir, 'index.json'), 'index.json'), 'index.json', MEDIA.ociIndex);
  if (top.kind !== 'index') throw fail('index.json of the layout is not an image index');
  const { manifest } = await resolveManifest(layoutDir, selectFromLayout(top.index, opts.select), onProgress);
  const configFile = await verifiedBlob(layoutDir, manifest.config, 'the image config');
  const config = parseOciConfig(await readSmall(configFile, 'the image config'), 'the image config');
  const n = manifest.layers.length;
  if (config.rootfs.diff_ids.length !== n) throw fail(`the image config lists ${config.rootfs.diff_ids.length} layers (diff_ids) but the manifest ${n}; the image is damaged`);
  const layers: LayerSource[] = [];
  for (const [i, d] of manifest.layers.entries()) {
    const what = `layer ${i + 1}/${n} (${d.digest})`;
    const compression = layerCompression(d.mediaType);
    if (compression === null) throw fail(`${what} has media type ${d.mediaType}, which carte cannot unpack (tar, tar+gzip and tar+zstd layers are supported)`);
    layers.push({ file: await verifiedBlob(layoutDir, d, what), compression, diffId: config.rootfs.diff_ids[i]!, what });
  }
  return storeImage(images, layers, configFromOci(config), opts.tag, onProgress);
}

/** A path inside an unpacked archive, named by the archive's own manifest: it must stay inside. */
function inside(dir: string, rel: unknown, what: string): string {
  if (typeof rel !== 'string' || !rel || rel.startsWith('/') || rel.split('/').includes('..')) throw fail(`manifest.json names ${what} as ${JSON.stringify(rel)}, which is not a path inside the archive`);
  return path.join(dir, rel);
}

interface DockerEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** Imports an unpacked `docker save` / skopeo docker-archive: manifest.json names the config and the layer tars. */
async function importDockerDir(images: ImageStore, dir: string, tag: string | undefined, onProgress: (line: string) => void): Promise<ImageRecord & { ref: string }> {
  let list: unknown;
  try {
    list = JSON.parse(await readSmall(path.join(dir, 'manifest.json'), 'manifest.json'));
  } catch (e) {
    throw e instanceof CarteError ? e : fail(`manifest.json of the archive is not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(list) || !list.length) throw fail('manifest.json of the archive lists no image');
  const entries = list as DockerEntry[];
  const entry = entries.length === 1 ? entries[0]! : entries.find((e) => tag && (e.RepoTags ?? []).some((t) => normalizeRef(t) === normalizeRef(tag)));
  if (!entry) throw fail(`the archive holds ${entries.length} images; name one with -t (${entries.flatMap((e) => e.RepoTags ?? []).join(', ')})`, 2);
  const name = tag ?? (entry.RepoTags?.[0] ? shortName(entry.RepoTags[0]) : undefined);
  if (!name) throw fail('the archive names no image (no RepoTags); give one with -t NAME:TAG', 2);
  if (tag === undefined) await refuseNameTakeover(images, name);
  const configFile = inside(dir, entry.Config, 'the config');
  const configText = await readSmall(configFile, 'the image config');
  // The config's file name is its digest (abc….json or blobs/sha256/abc…): check it.
  const named = /([0-9a-f]{64})(?:\.json)?$/.exec(entry.Config);
  if (named && createHash('sha256').update(configText).digest('hex') !== named[1]) throw fail(`the image config ${entry.Config} does not match its digest; the archive is damaged`);
  const config = parseOciConfig(configText, 'the image config');
  if (!Array.isArray(entry.Layers) || entry.Layers.length !== config.rootfs.diff_ids.length) throw fail(`manifest.json lists ${Array.isArray(entry.Layers) ? entry.Layers.length : 0} layers but the config ${config.rootfs.diff_ids.length}; the archive is damaged`);
  const n = entry.Layers.length;
  const layers: LayerSource[] = [];
  for (const [i, rel] of entry.Layers.entries()) {
    const file = inside(dir, rel, `layer ${i + 1}`);
    const head = Buffer.alloc(4);
    const fd = await fsp.open(file).catch(() => {
      throw fail(`layer ${i + 1}/${n} (${rel}) is missing from the archive`);
    });
    try {
      await fd.read(head, 0, 4, 0);
    } finally {
      await fd.close();
    }
    layers.push({ file, compression: sniffCompression(head), diffId: config.rootfs.diff_ids[i]!, what: `layer ${i + 1}/${n} (${rel})` });
  }
  return { ...(await storeImage(images, layers, configFromOci(config), name, onProgress)), ref: normalizeRef(name) };
}

export type ArchiveFormat = 'oci-archive' | 'docker-archive' | 'rootfs';

/** Which format an archive is, from its entry names (pure). */
export function archiveFormat(names: Iterable<string>): ArchiveFormat {
  const set = new Set([...names].map((n) => n.replace(/^\.\//, '').replace(/\/$/, '')));
  if (set.has('oci-layout') && set.has('index.json')) return 'oci-archive';
  if (set.has('manifest.json')) return 'docker-archive';
  return 'rootfs';
}

/** Docker Hub's names as people write them: docker.io/library/redis:7 → redis:7, docker.io/team/app:1 → team/app:1. */
export function shortName(name: string): string {
  return name.replace(/^docker\.io\/(library\/)?/, '');
}

/** The name:tag an OCI layout gives its only (or selected) image, when it gives a full one. */
function layoutName(index: Index): string | undefined {
  if (index.manifests.length !== 1) return undefined;
  const a = index.manifests[0]!.annotations ?? {};
  for (const n of [a[IMAGE_NAME], a[REF_NAME]]) {
    if (!n) continue;
    try {
      return normalizeRef(shortName(n));
    } catch {
      // a bare tag such as "1.0" is not a full name
    }
  }
  return undefined;
}

/**
 * Imports a file of any format carte knows, detected from its contents (a
 * gzip-compressed archive is fine). `tag` may be left out when the archive
 * names its image.
 */
export async function importImageArchive(images: ImageStore, file: string, tag: string | undefined, opts: { onLeftOut?: (line: string) => void; onProgress?: (line: string) => void } = {}): Promise<ImageRecord & { format: ArchiveFormat; ref: string }> {
  const onProgress = opts.onProgress ?? (() => {});
  if (tag !== undefined) normalizeRef(tag);
  const st = await fsp.stat(file).catch(() => null);
  if (!st?.isFile()) throw fail(`failed to import ${file}: no such file`, 2);
  const names: string[] = [];
  try {
    await tar.t({ file, onReadEntry: (e) => void names.push(e.path) });
  } catch (e) {
    throw fail(`failed to import ${file}: not a readable tar archive (${(e as Error).message})`);
  }
  const format = archiveFormat(names);
  if (format === 'rootfs') {
    if (tag === undefined) throw fail(`${file} is a plain rootfs archive, which names no image; give one with -t NAME:TAG`, 2);
    return { ...(await importRootfs(images, file, tag, opts.onLeftOut)), format, ref: normalizeRef(tag) };
  }
  const dir = await images.stagingDir();
  try {
    const refusal = await unpackArchive(file, dir);
    if (refusal !== null) throw fail(`failed to import ${file}: it holds ${refusal}`);
    if (format === 'docker-archive') return { ...(await importDockerDir(images, dir, tag, onProgress)), format };
    const index = parseIndexOrManifest(await readSmall(path.join(dir, 'index.json'), 'index.json'), 'index.json', MEDIA.ociIndex);
    const name = tag ?? (index.kind === 'index' ? layoutName(index.index) : undefined);
    if (!name) throw fail(`${file} names no image; give one with -t NAME:TAG`, 2);
    if (tag === undefined) await refuseNameTakeover(images, name);
    return { ...(await importOciLayout(images, dir, { tag: name, onProgress })), format, ref: normalizeRef(name) };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/**
 * The name an archive gives itself never replaces a stored image: whoever wrote the archive would
 * take over a tag services run (rmi refuses that; import must too). `-t` says it on purpose.
 */
async function refuseNameTakeover(images: ImageStore, name: string): Promise<void> {
  const ref = normalizeRef(name);
  if (!(await images.get(ref).then(() => true, () => false))) return;
  throw fail(`the archive names itself ${ref}, which is already a stored image; an archive's own name never replaces one: give -t ${ref} to replace it on purpose, or -t another name`, 2);
}

/** A layer tree as OCI tar entries, in a fixed order: whiteouts back to `.wh.NAME`, opaque folders to `.wh..wh..opq`. */
async function* layerEntries(root: string): AsyncGenerator<TarEntry> {
  const opaque = await opaqueDirs(root);
  async function* walk(rel: string): AsyncGenerator<TarEntry> {
    const names = (await fsp.readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      const full = path.join(root, relPath);
      const st = await fsp.lstat(full);
      const base = { path: relPath, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        yield { type: 'dir', ...base };
        if (opaque.has(relPath)) yield { type: 'file', path: `${relPath}/.wh..wh..opq`, mode: 0, uid: 0, gid: 0, size: 0, source: Buffer.alloc(0) };
        yield* walk(relPath);
      } else if (st.isFile()) {
        yield { type: 'file', ...base, size: st.size, source: full };
      } else if (st.isSymbolicLink()) {
        yield { type: 'symlink', ...base, target: await fsp.readlink(full) };
      } else if (st.isCharacterDevice() && st.rdev === 0) {
        yield { type: 'file', path: rel ? `${rel}/.wh.${name}` : `.wh.${name}`, mode: 0, uid: 0, gid: 0, size: 0, source: Buffer.alloc(0) };
      }
      // Other devices, FIFOs and sockets cannot be in a layer carte made; an OCI layer has no place for them here.
    }
  }
  yield* walk('');
}

/** Writes `content` (a stream of chunks) as a blob of the layout; returns its descriptor fields and, gzipped, the uncompressed digest. */
async function writeBlob(layoutDir: string, content: AsyncIterable<Buffer>, gzip: boolean): Promise<{ digest: string; size: number; diffId: string }> {
  const dir = path.join(layoutDir, 'blobs', 'sha256');
  const tmp = path.join(dir, `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const raw = createHash('sha256');
  const out = createHash('sha256');
  let size = 0;
  const tap = (h: ReturnType<typeof createHash>, count: boolean) => new Transform({
    transform(chunk: Buffer, _e, cb) {
      h.update(chunk);
      if (count) size += chunk.length;
      cb(null, chunk);
    },
  });
  try {
    // gzip level 1: 2.4 times as fast as the default 6 for 9% more bytes (docs/benchmarks.md).
    const stages: NodeJS.ReadWriteStream[] = gzip ? [tap(raw, false), zlib.createGzip({ level: 1 }), tap(out, true)] : [tap(out, true)];
    await pipeline(Readable.from(content), ...(stages as [Transform]), fs.createWriteStream(tmp, { mode: 0o644 }));
    const hex = out.digest('hex');
    await fsp.rename(tmp, path.join(dir, hex));
    return { digest: `sha256:${hex}`, size, diffId: gzip ? `sha256:${raw.digest('hex')}` : `sha256:${hex}` };
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** Writes `ref` as an OCI image layout into `layoutDir` (created, or added to when it is already a layout; an entry of the same name is replaced). */
export async function exportOciLayout(images: ImageStore, ref: string, layoutDir: string): Promise<{ manifestDigest: string }> {
  const image = await images.get(ref);
  const name = /^[0-9a-f]{12,64}$/.test(ref) ? undefined : normalizeRef(ref);
  await fsp.mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const digest of image.layers) {
    const blob = await writeBlob(layoutDir, tarStream(layerEntries(images.layerPath(digest))), true);
    layers.push({ mediaType: MEDIA.ociLayerGzip, digest: blob.digest, size: blob.size });
    diffIds.push(blob.diffId);
  }
  const configJson = Buffer.from(JSON.stringify(ociConfigFrom(image.config, diffIds, image.createdAt)));
  const config = await writeBlob(layoutDir, once(configJson), false);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, digest: config.digest, size: config.size }, layers };
  const m = await writeBlob(layoutDir, once(Buffer.from(JSON.stringify(manifest))), false);
  const indexFile = path.join(layoutDir, 'index.json');
  let index: Index = { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] };
  const existing = await fsp.readFile(indexFile, 'utf8').catch(() => null);
  if (existing !== null) {
    const parsed = parseIndexOrManifest(existing, `${indexFile}`, MEDIA.ociIndex);
    if (parsed.kind !== 'index') throw fail(`${indexFile} is not an image index; export into an empty folder`);
    index = parsed.index;
  }
  // ref.name holds the whole name:tag, as skopeo writes it (so `skopeo copy oci:DIR:NAME:TAG …` finds it).
  const annotations = name ? { [IMAGE_NAME]: name, [REF_NAME]: name } : undefined;
  index.manifests = index.manifests.filter((d) => !name || d.annotations?.[REF_NAME] !== name);
  index.manifests.push({ mediaType: MEDIA.ociManifest, digest: m.digest, size: m.size, platform: { architecture: 'amd64', os: 'linux' }, ...(annotations ? { annotations } : {}) });
  await fsp.writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await fsp.writeFile(indexFile, JSON.stringify(index));
  return { manifestDigest: m.digest };
}

/** Writes `ref` as an OCI archive (a tar of a layout); the same image always gives the same bytes. */
export async function exportOciArchive(images: ImageStore, ref: string, file: string): Promise<{ manifestDigest: string; size: number }> {
  const dir = await images.stagingDir();
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const { manifestDigest } = await exportOciLayout(images, ref, dir);
    const blobs = (await fsp.readdir(path.join(dir, 'blobs', 'sha256'))).sort();
    const entry = (rel: string, size: number): TarEntry => ({ type: 'file', path: rel, mode: 0o644, uid: 0, gid: 0, size, source: path.join(dir, rel) });
    const entries: TarEntry[] = [
      { type: 'dir', path: 'blobs', mode: 0o755, uid: 0, gid: 0 },
      { type: 'dir', path: 'blobs/sha256', mode: 0o755, uid: 0, gid: 0 },
    ];
    for (const b of blobs) entries.push(entry(`blobs/sha256/${b}`, (await fsp.stat(path.join(dir, 'blobs', 'sha256', b))).size));
    for (const f of ['index.json', 'oci-layout']) entries.push(entry(f, (await fsp.stat(path.join(dir, f))).size));
    await pipeline(Readable.from(tarStream(entries)), fs.createWriteStream(tmp, { mode: 0o644 }));
    await fsp.rename(tmp, file);
    return { manifestDigest, size: (await fsp.stat(file)).size };
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e instanceof CarteError ? e : fail(`failed to export ${ref} to ${file}: ${(e as Error).message}`);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
