// Images on disk, under CARTE_HOME:
//   layers/<sha256>/        an unpacked layer, shared read-only by every instance using it
//   layers/<sha256>.json    its size and creation time
//   images/<id>.json        an image: config + ordered layer digests
//   images/refs.json        name:tag → image id
//   images/build-cache.json build step key → layer digest
// A layer's digest is the sha256 of a canonical listing of its tree (path,
// type, mode, symlink target, content sha256), so the same files always make
// the same layer, whatever their mtimes, and each layer is stored once.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError, NotFoundError } from '../../../errors.js';
import { DurableJsonFile } from '../../../util/durable-json-file.js';
import { acquireLock } from '../../../util/lock.js';
import { localName, parseReference } from '../../../schema/image-reference.js';
import { opaqueDirs } from './overlay-marks.js';

export interface ImageConfig {
  env: string[];
  cmd: string[] | null;
  entrypoint: string[] | null;
  workingDir: string;
  user: string;
  exposedPorts: string[];
  labels: Record<string, string>;
}

export interface ImageRecord {
  id: string;
  config: ImageConfig;
  /** Layer digests, lowest first. */
  layers: string[];
  createdAt: string;
  size: number;
}

export interface ImageListing {
  ref: string;
  name: string;
  tag: string;
  image: ImageRecord;
}

export const EMPTY_CONFIG: ImageConfig = { env: [], cmd: null, entrypoint: null, workingDir: '/', user: '', exposedPorts: [], labels: {} };

/**
 * `name` → `name:latest`; registry references (`127.0.0.1:5000/team/app:1`,
 * `host/app@sha256:…`) are kept as written. Refuses what is not a reference.
 */
export function normalizeRef(ref: string): string {
  const r = parseReference(ref);
  if (!r) throw new CarteError('image', `"${ref}" is not a valid image name (use e.g. metaverse/login:1.0)`, { exitCode: 2 });
  return localName(r);
}

/**
 * Walks a tree in a fixed order and hashes what makes it this tree. Lines
 * only some trees have are added only when present, so the digest of a
 * plain tree (root-owned, no whiteouts, no opaque folders: every carte build
 * before OCI images) is what it always was: an owner other than root:root, a
 * character device (overlayfs whiteouts, from OCI layers and RUN steps), and
 * the opaque mark of a folder each add to the line of their entry.
 */
export async function treeDigest(root: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const opaque = await opaqueDirs(root);
  const owner = (st: fs.Stats) => (st.uid === 0 && st.gid === 0 ? '' : ` u${st.uid}:${st.gid}`);
  const walk = async (rel: string): Promise<void> => {
    const entries = (await fsp.readdir(path.join(root, rel), { withFileTypes: true })).map((e) => e.name).sort();
    for (const name of entries) {
      const relPath = path.posix.join(rel, name);
      const full = path.join(root, relPath);
      const st = await fsp.lstat(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) {
        hash.update(`L ${relPath} ${mode} ${await fsp.readlink(full)}${owner(st)}\n`);
      } else if (st.isDirectory()) {
        hash.update(`D ${relPath} ${mode}${owner(st)}${opaque.has(relPath) ? ' opaque' : ''}\n`);
        await walk(relPath);
      } else if (st.isFile()) {
        const content = createHash('sha256');
        for await (const chunk of fs.createReadStream(full)) content.update(chunk as Buffer);
        hash.update(`F ${relPath} ${mode} ${content.digest('hex')}${owner(st)}\n`);
        size += st.size;
      } else if (st.isCharacterDevice()) {
        hash.update(`C ${relPath} ${mode} ${Math.floor(st.rdev / 256) & 0xfff},${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}${owner(st)}\n`);
      }
    }
  };
  await walk('');
  return { digest: hash.digest('hex'), size };
}

export class ImageStore {
  readonly layersDir: string;
  readonly imagesDir: string;

  constructor(readonly home: string) {
    this.layersDir = path.join(home, 'layers');
    this.imagesDir = path.join(home, 'images');
    fs.mkdirSync(this.layersDir, { recursive: true, mode: 0o700 });
    fs.mkdirSync(this.imagesDir, { recursive: true, mode: 0o700 });
  }

  layerPath(digest: string): string {
    return path.join(this.layersDir, digest);
  }

  hasLayer(digest: string): boolean {
    return fs.existsSync(this.layerPath(digest)) && fs.existsSync(`${this.layerPath(digest)}.json`);
  }

  layerSize(digest: string): number {
    try {
      return (JSON.parse(fs.readFileSync(`${this.layerPath(digest)}.json`, 'utf8')) as { size: number }).size;
    } catch {
      return 0;
    }
  }

  /** A fresh staging folder on the same filesystem as the layers (so adding one is a rename). */
  async stagingDir(): Promise<string> {
    return fsp.mkdtemp(path.join(this.layersDir, '.staging-'));
  }

  /** Turns a staged tree into a layer (or drops it when that layer already exists). Returns its digest. */
  async addLayer(staged: string): Promise<{ digest: string; size: number; reused: boolean }> {
    const { digest, size } = await treeDigest(staged);
    if (this.hasLayer(digest)) {
      await fsp.rm(staged, { recursive: true, force: true });
      return { digest, size, reused: true };
    }
    await fsp.rm(this.layerPath(digest), { recursive: true, force: true });
    await fsp.rename(staged, this.layerPath(digest));
    // The metadata file marks the layer complete: a crash before it leaves a folder that gc removes.
    await new DurableJsonFile(`${this.layerPath(digest)}.json`).write({ digest, size, createdAt: new Date().toISOString() });
    return { digest, size, reused: false };
  }

  private refsFile() {
    return new DurableJsonFile<Record<string, string>>(path.join(this.imagesDir, 'refs.json'));
  }

  async refs(): Promise<Record<string, string>> {
    return (await this.refsFile().read()) ?? {};
  }

  /** Changes refs under a lock, so two builds tagging at once both land. */
  private async updateRefs(change: (refs: Record<string, string>) => void): Promise<void> {
    const lock = await acquireLock(path.join(this.imagesDir, 'refs.lock'));
    try {
      const file = this.refsFile();
      const refs = (await file.read()) ?? {};
      change(refs);
      await file.write(refs);
    } finally {
      await lock.release();
    }
  }

  async save(config: ImageConfig, layers: string[], tag: string): Promise<ImageRecord> {
    const ref = normalizeRef(tag);
    const id = createHash('sha256').update(JSON.stringify({ config, layers })).digest('hex');
    const file = path.join(this.imagesDir, `${id}.json`);
    let record: ImageRecord;
    if (fs.existsSync(file)) {
      record = JSON.parse(await fsp.readFile(file, 'utf8')) as ImageRecord;
    } else {
      record = { id, config, layers, createdAt: new Date().toISOString(), size: layers.reduce((n, d) => n + this.layerSize(d), 0) };
      await new DurableJsonFile(file).write(record);
    }
    await this.updateRefs((refs) => {
      refs[ref] = id;
    });
    return record;
  }

  /** The image a reference (name:tag, or an id or its prefix of 12+) points at. */
  async get(ref: string): Promise<ImageRecord> {
    const refs = await this.refs();
    const looksLikeId = /^[0-9a-f]{12,64}$/.test(ref);
    let id: string | undefined = looksLikeId ? undefined : refs[normalizeRef(ref)];
    if (looksLikeId) id = (await fsp.readdir(this.imagesDir)).find((f) => f.startsWith(ref) && f.endsWith('.json'))?.slice(0, -5);
    if (!id) throw new NotFoundError(`image "${ref}" not found (build it with "carte build -t ${ref} DIR", or import one with "carte image import FILE -t ${ref}")`);
    try {
      return JSON.parse(await fsp.readFile(path.join(this.imagesDir, `${id}.json`), 'utf8')) as ImageRecord;
    } catch {
      throw new CarteError('image', `image "${ref}" points at ${id.slice(0, 12)}, whose record is missing; build or import it again`);
    }
  }

  async list(): Promise<ImageListing[]> {
    const refs = await this.refs();
    const out: ImageListing[] = [];
    for (const [ref, id] of Object.entries(refs).sort(([a], [b]) => (a < b ? -1 : 1))) {
      try {
        const image = JSON.parse(await fsp.readFile(path.join(this.imagesDir, `${id}.json`), 'utf8')) as ImageRecord;
        // A digest-pinned pull is kept as name@sha256:…: its "tag" is the digest.
        const i = ref.includes('@') ? ref.indexOf('@') : ref.lastIndexOf(':');
        out.push({ ref, name: ref.slice(0, i), tag: ref.slice(i + 1), image });
      } catch {
        // A dangling ref (record deleted by hand) is skipped; gc drops it.
      }
    }
    return out;
  }

  /** Removes a tag; the image record and its layers go when nothing refers to them (see gc). */
  async untag(ref: string): Promise<string> {
    const normal = normalizeRef(ref);
    let id: string | undefined;
    await this.updateRefs((refs) => {
      id = refs[normal];
      delete refs[normal];
    });
    if (!id) throw new NotFoundError(`image "${ref}" not found`);
    return id;
  }

  /**
   * Deletes image records no tag points at, and layers no image (nor
   * `keepLayers`, the layers of existing instances) uses, plus staging leftovers.
   */
  async gc(keepLayers: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    const refs = await this.refs();
    const live = new Set(Object.values(refs));
    const used = new Set(keepLayers);
    for (const f of await fsp.readdir(this.imagesDir)) {
      const m = /^([0-9a-f]{64})\.json$/.exec(f);
      if (!m) continue;
      if (!live.has(m[1]!)) {
        await fsp.rm(path.join(this.imagesDir, f), { force: true });
        removed.push(`image ${m[1]!.slice(0, 12)}`);
        continue;
      }
      for (const l of (JSON.parse(await fsp.readFile(path.join(this.imagesDir, f), 'utf8')) as ImageRecord).layers) used.add(l);
    }
    for (const f of await fsp.readdir(this.layersDir)) {
      const digest = f.replace(/\.json$/, '');
      if (f.startsWith('.staging-') || (/^[0-9a-f]{64}(\.json)?$/.test(f) && !used.has(digest))) {
        await fsp.rm(path.join(this.layersDir, f), { recursive: true, force: true });
        if (!f.endsWith('.json')) removed.push(f.startsWith('.staging-') ? `staging ${f}` : `layer ${digest.slice(0, 12)}`);
      }
    }
    return removed;
  }
}
