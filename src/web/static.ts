// The page's files, built by esbuild into dist/web: served from memory with
// an ETag. index.html and fixed names are revalidated on each load (no-cache:
// a new build shows at once); names carrying a content hash are immutable.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

/** Cache-Control for a file name: hashed names (app.3f9a1c2b.js) never change; others are revalidated. Pure. */
export function cacheControlFor(name: string): string {
  return /[.-][0-9a-f]{8,}\.[a-z0-9]+$/i.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache';
}

/** The file for a URL path, or null. Only plain names directly in `dir` (no folders, no dot files): nothing else can be reached. */
export class StaticFiles {
  private readonly cache = new Map<string, { mtimeMs: number; size: number; file: StaticFile }>();

  constructor(private readonly dir: string) {}

  get(urlPath: string): StaticFile | null {
    const name = urlPath === '/' ? 'index.html' : urlPath.slice(1);
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name)) return null;
    const type = TYPES[path.extname(name)];
    if (!type) return null;
    const file = path.join(this.dir, name);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) return null;
    const hit = this.cache.get(name);
    if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.file;
    const body = fs.readFileSync(file);
    const f: StaticFile = { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`, cacheControl: cacheControlFor(name) };
    this.cache.set(name, { mtimeMs: st.mtimeMs, size: st.size, file: f });
    return f;
  }

  /** Whether the page was built at all. */
  built(): boolean {
    return fs.existsSync(path.join(this.dir, 'index.html'));
  }
}
