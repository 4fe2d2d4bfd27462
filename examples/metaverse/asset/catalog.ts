// Asset metadata rules and the files on the volume:
//   DATA_DIR/files/ID        the asset's bytes
//   DATA_DIR/meta/ID.json    its metadata (written last: an asset exists once this does)
//   DATA_DIR/thumbs/ID       optional thumbnail
//   DATA_DIR/tmp/            uploads in progress (renamed into place when complete)
// Every replica mounts the same named volume, so any of them serves any asset.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpError } from '../lib/http.js';

export interface AssetMeta {
  id: string;
  name: string;
  category: string;
  price: number;
  owner: string;
  size: number;
  sha256: string;
  contentType: string;
  thumbnail: string | null;
  /** the thumbnail's declared type (absent on thumbnails stored before it was kept: served as application/octet-stream) */
  thumbnailType?: string;
  createdAt: string;
}

export const CATEGORY_RULE = /^[a-z0-9][a-z0-9-]{0,31}$/;
const ID_RULE = /^[0-9a-f]{16}$/;

/** name, category and price from an upload's query string. */
export function parseUploadQuery(q: URLSearchParams): { name: string; category: string; price: number } {
  const name = q.get('name') ?? '';
  const category = q.get('category') ?? '';
  const priceText = q.get('price') ?? '0';
  if (name.length < 1 || name.length > 100 || /[\u0000-\u001f]/.test(name)) throw new HttpError(400, 'bad_name', 'name must be 1 to 100 printable characters (?name=sword.glb)');
  if (!CATEGORY_RULE.test(category)) throw new HttpError(400, 'bad_category', 'category must be 1 to 32 lowercase letters, digits or "-" (?category=weapons)');
  const price = Number(priceText);
  if (!Number.isInteger(price) || price < 0 || price > 1_000_000) throw new HttpError(400, 'bad_price', 'price must be a whole number from 0 to 1000000 (?price=30)');
  return { name, category, price };
}

export function checkId(id: string): string {
  if (!ID_RULE.test(id)) throw new HttpError(404, 'not_found', `no asset "${id}"`);
  return id;
}

/** Counts bytes through a stream and fails past `limit` (an upload larger than allowed). */
export function sizeLimit(limit: number): Transform & { bytes: number } {
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      t.bytes += chunk.length;
      if (t.bytes > limit) done(new HttpError(413, 'too_large', `asset is larger than ${limit} bytes`));
      else done(null, chunk);
    },
  }) as Transform & { bytes: number };
  t.bytes = 0;
  return t;
}

export class Catalog {
  constructor(readonly dir: string) {
    for (const d of ['files', 'meta', 'thumbs', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  }

  private file = (...p: string[]) => path.join(this.dir, ...p);

  /** Streams `body` to disk (never whole in memory), then publishes its metadata. */
  async create(body: Readable, limit: number, meta: Omit<AssetMeta, 'id' | 'size' | 'sha256' | 'thumbnail' | 'createdAt'>): Promise<AssetMeta> {
    const id = randomBytes(8).toString('hex');
    const tmp = this.file('tmp', `${id}.upload`);
    const hash = createHash('sha256');
    const counter = sizeLimit(limit);
    const hasher = new Transform({ transform(chunk: Buffer, _e, done) { hash.update(chunk); done(null, chunk); } });
    try {
      await pipeline(body, counter, hasher, fs.createWriteStream(tmp, { flags: 'wx' }));
      await fsp.rename(tmp, this.file('files', id));
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    const full: AssetMeta = { id, ...meta, size: counter.bytes, sha256: hash.digest('hex'), thumbnail: null, createdAt: new Date().toISOString() };
    await this.writeMeta(full);
    return full;
  }

  async get(id: string): Promise<AssetMeta> {
    try {
      return JSON.parse(await fsp.readFile(this.file('meta', `${checkId(id)}.json`), 'utf8')) as AssetMeta;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new HttpError(404, 'not_found', `no asset "${id}"`);
      throw e;
    }
  }

  async list(filter: { category?: string | null; owner?: string | null }): Promise<AssetMeta[]> {
    const names = await fsp.readdir(this.file('meta'));
    const all = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.get(n.slice(0, -5)).catch(() => null)));
    return all
      .filter((m): m is AssetMeta => m !== null && (!filter.category || m.category === filter.category) && (!filter.owner || m.owner === filter.owner))
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1));
  }

  contentPath(id: string): string {
    return this.file('files', checkId(id));
  }

  thumbPath(id: string): string {
    return this.file('thumbs', checkId(id));
  }

  async setThumbnail(meta: AssetMeta, body: Readable, limit: number, type: string): Promise<AssetMeta> {
    const tmp = this.file('tmp', `${meta.id}.thumb-${randomBytes(4).toString('hex')}`);
    try {
      await pipeline(body, sizeLimit(limit), fs.createWriteStream(tmp, { flags: 'wx' }));
      await fsp.rename(tmp, this.thumbPath(meta.id));
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    const next = { ...meta, thumbnail: `/v1/assets/${meta.id}/thumbnail`, thumbnailType: type };
    await this.writeMeta(next);
    return next;
  }

  /** Removes metadata first, so a half-deleted asset is simply gone. */
  async remove(id: string): Promise<void> {
    await fsp.rm(this.file('meta', `${checkId(id)}.json`), { force: true });
    await fsp.rm(this.contentPath(id), { force: true });
    await fsp.rm(this.thumbPath(id), { force: true });
  }

  /** Uploads that a crash left behind in tmp/ (older than an hour). */
  async sweep(now = Date.now()): Promise<number> {
    let n = 0;
    for (const f of await fsp.readdir(this.file('tmp'))) {
      const st = await fsp.stat(this.file('tmp', f)).catch(() => null);
      if (st && now - st.mtimeMs > 3600_000) {
        await fsp.rm(this.file('tmp', f), { force: true });
        n++;
      }
    }
    return n;
  }

  private async writeMeta(meta: AssetMeta): Promise<void> {
    const tmp = this.file('tmp', `${meta.id}.meta-${randomBytes(4).toString('hex')}`);
    await fsp.writeFile(tmp, JSON.stringify(meta));
    await fsp.rename(tmp, this.file('meta', `${meta.id}.json`));
  }
}
