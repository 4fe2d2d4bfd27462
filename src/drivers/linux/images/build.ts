// Builds an image from a Cartefile. Each COPY/ADD makes one layer; the other
// instructions change only the image config. A step whose instruction, parent
// layers and inputs (path, size, mtime, mode of every file it reads) are
// unchanged reuses its cached layer without reading file contents, so a
// rebuild of an unchanged context is quick.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { minimatch } from 'minimatch';
import * as tar from 'tar';
import { CartefileError } from '../../../errors.js';
import { DurableJsonFile } from '../../../util/durable-json-file.js';
import type { Runner } from '../exec.js';
import { parseCartefile, type Step } from './cartefile.js';
import { sharedLibraries } from './host-binary.js';
import { parseIgnore, type IgnoreMatcher } from './ignore.js';
import { EMPTY_CONFIG, normalizeRef, type ImageConfig, type ImageRecord, type ImageStore } from './store.js';

export interface BuildRequest {
  context: string;
  /** Cartefile path, relative to the context unless absolute; default `Cartefile`. */
  cartefile?: string;
  tag: string;
  args?: Record<string, string>;
  onProgress?: (line: string) => void;
}

export interface BuildResult {
  ref: string;
  image: ImageRecord;
  cachedSteps: number;
  steps: number;
}

/** One file (or folder, or symlink) a COPY puts into the image. */
interface CopyItem {
  source: string;
  /** Absolute path inside the image. */
  dest: string;
  /** Dereference symlinks (host programs and their libraries). */
  follow: boolean;
  /** ADD of a local archive: unpack into `dest` instead of copying. */
  unpack: boolean;
}

const ARCHIVE = /\.(tar|tar\.gz|tgz|tar\.bz2|tar\.xz)$/i;
const isGlob = (s: string) => /[*?[]/.test(s);

function describe(step: Step): string {
  switch (step.op) {
    case 'FROM': return `FROM ${step.image}`;
    case 'COPY': return step.text;
    case 'ENV': return `ENV ${step.vars.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'LABEL': return `LABEL ${step.labels.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'WORKDIR': return `WORKDIR ${step.path}`;
    case 'CMD': case 'ENTRYPOINT': return `${step.op} ${JSON.stringify(step.argv)}`;
    case 'EXPOSE': return `EXPOSE ${step.ports.join(' ')}`;
    case 'USER': return `USER ${step.user}`;
  }
}

export class ImageBuilder {
  constructor(private readonly images: ImageStore, private readonly runner: Runner) {}

  private cacheFile() {
    return new DurableJsonFile<Record<string, string>>(path.join(this.images.imagesDir, 'build-cache.json'));
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    const ref = normalizeRef(req.tag);
    const context = path.resolve(req.context);
    if (!fs.statSync(context, { throwIfNoEntry: false })?.isDirectory()) {
      throw new CartefileError(req.context, 0, 'the build context is not a folder');
    }
    const cartefile = path.resolve(context, req.cartefile ?? 'Cartefile');
    const display = path.relative(process.cwd(), cartefile) || cartefile;
    let text: string;
    try {
      text = await fsp.readFile(cartefile, 'utf8');
    } catch {
      throw new CartefileError(display, 0, 'cannot read the Cartefile (give its path with -f)');
    }
    const steps = parseCartefile(text, display, req.args);
    const ignoreText = await fsp.readFile(path.join(context, '.carteignore'), 'utf8').catch(() => '');
    const ignored = parseIgnore(ignoreText);
    const progress = req.onProgress ?? (() => {});
    const cache = (await this.cacheFile().read()) ?? {};

    let config: ImageConfig = structuredClone(EMPTY_CONFIG);
    let layers: string[] = [];
    let cached = 0;
    for (const [i, step] of steps.entries()) {
      const prefix = `STEP ${i + 1}/${steps.length}: ${describe(step)}`;
      const fail = (message: string): never => {
        throw new CartefileError(display, step.line, message);
      };
      switch (step.op) {
        case 'FROM':
          if (step.image !== 'scratch') {
            const base = await this.images.get(step.image).catch(() => fail(`FROM ${step.image}: no such local image (build or import it first)`));
            config = structuredClone(base.config);
            layers = [...base.layers];
          }
          progress(prefix);
          break;
        case 'ENV':
          for (const [k, v] of step.vars) config.env = [...config.env.filter((e) => !e.startsWith(`${k}=`)), `${k}=${v}`];
          progress(prefix);
          break;
        case 'LABEL':
          for (const [k, v] of step.labels) config.labels[k] = v;
          progress(prefix);
          break;
        case 'WORKDIR':
          config.workingDir = path.posix.resolve(config.workingDir, step.path);
          progress(prefix);
          break;
        case 'CMD':
          config.cmd = step.argv;
          progress(prefix);
          break;
        case 'ENTRYPOINT':
          config.entrypoint = step.argv;
          progress(prefix);
          break;
        case 'EXPOSE':
          config.exposedPorts = [...new Set([...config.exposedPorts, ...step.ports.map((p) => (p.includes('/') ? p : `${p}/tcp`))])];
          progress(prefix);
          break;
        case 'USER':
          config.user = step.user;
          progress(prefix);
          break;
        case 'COPY': {
          const items = step.source === 'host'
            ? await this.hostItems(step, config.workingDir, fail)
            : await contextItems(step, context, config.workingDir, ignored, fail);
          const key = await cacheKey(step, layers, config.workingDir, ignoreText, items);
          const hit = cache[key];
          if (hit && this.images.hasLayer(hit)) {
            layers.push(hit);
            cached++;
            progress(`${prefix} (cached)`);
            break;
          }
          const staged = await this.images.stagingDir();
          try {
            await stage(items, staged, ignored, context);
            const layer = await this.images.addLayer(staged);
            layers.push(layer.digest);
            cache[key] = layer.digest;
            progress(`${prefix} → layer ${layer.digest.slice(0, 12)} (${formatSize(layer.size)})`);
          } catch (e) {
            await fsp.rm(staged, { recursive: true, force: true });
            throw e;
          }
          break;
        }
      }
    }
    await this.cacheFile().write(cache);
    const image = await this.images.save(config, layers, ref);
    progress(`built ${ref} (id ${image.id.slice(0, 12)}, ${formatSize(image.size)}, ${layers.length} layer${layers.length === 1 ? "" : "s"})`);
    const copies = steps.filter((s) => s.op === 'COPY').length;
    return { ref, image, cachedSteps: cached, steps: copies };
  }

  /** A host program (or file or folder) and, for programs, the shared libraries it needs. */
  private async hostItems(step: Extract<Step, { op: 'COPY' }>, workdir: string, fail: (m: string) => never): Promise<CopyItem[]> {
    const dest = path.posix.resolve(workdir, step.dest);
    const intoDir = step.sources.length > 1 || step.dest.endsWith('/');
    const items: CopyItem[] = [];
    for (const source of step.sources) {
      const st = await fsp.stat(source).catch(() => fail(`host file "${source}" does not exist on this machine`));
      items.push({ source, dest: intoDir ? path.posix.join(dest, path.basename(source)) : dest, follow: true, unpack: false });
      if (st.isFile() && st.mode & 0o111) {
        for (const lib of await sharedLibraries(this.runner, source)) items.push({ source: lib, dest: lib, follow: true, unpack: false });
      }
    }
    return items;
  }
}

/** Context files a COPY/ADD names, after globs and .carteignore. */
async function contextItems(step: Extract<Step, { op: 'COPY' }>, context: string, workdir: string, ignored: IgnoreMatcher, fail: (m: string) => never): Promise<CopyItem[]> {
  const dest = path.posix.resolve(workdir, step.dest);
  const matches: string[] = [];
  for (const pattern of step.sources) {
    const rel = path.posix.normalize(pattern).replace(/^\.\/?/, '').replace(/\/+$/, '');
    if (isGlob(rel)) {
      const found = (await listContext(context, ignored)).filter((f) => minimatch(f, rel, { dot: true }));
      if (!found.length) fail(`COPY source "${pattern}" matches nothing in the build context`);
      matches.push(...found);
    } else {
      if (rel !== '' && (ignored(rel) || !fs.existsSync(path.join(context, rel)))) {
        fail(`COPY source "${pattern}" is not in the build context${ignored(rel) ? ' (excluded by .carteignore)' : ''}`);
      }
      matches.push(rel);
    }
  }
  const intoDir = matches.length > 1 || step.dest.endsWith('/');
  return matches.map((rel) => {
    const source = path.join(context, rel);
    const isDir = fs.statSync(source).isDirectory();
    const unpack = step.extract && !isDir && ARCHIVE.test(rel);
    // A folder's contents go into the destination; a file goes to it (or into it, for several sources).
    const target = isDir || unpack ? dest : intoDir ? path.posix.join(dest, path.basename(rel)) : dest;
    return { source, dest: target, follow: false, unpack };
  });
}

async function listContext(context: string, ignored: IgnoreMatcher): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await fsp.readdir(path.join(context, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (ignored(r)) continue;
      out.push(r);
      if (e.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

/** Every file a step reads, as (path, size, mtime, mode): the step's inputs, cheaply. */
async function inputSignature(items: CopyItem[]): Promise<string[]> {
  const sig: string[] = [];
  const visit = async (p: string, follow: boolean) => {
    const st = follow ? await fsp.stat(p) : await fsp.lstat(p);
    sig.push(`${p} ${st.size} ${st.mtimeMs} ${st.mode}`);
    if (st.isDirectory()) for (const e of (await fsp.readdir(p)).sort()) await visit(path.join(p, e), follow);
  };
  for (const item of items) await visit(item.source, item.follow);
  return sig;
}

async function cacheKey(step: Extract<Step, { op: 'COPY' }>, layers: string[], workdir: string, ignoreText: string, items: CopyItem[]): Promise<string> {
  const inputs = await inputSignature(items);
  return createHash('sha256')
    .update(JSON.stringify({ layers, text: step.text, workdir, ignore: ignoreText, dests: items.map((i) => i.dest), inputs }))
    .digest('hex');
}

/** Copies the items into a staging folder laid out as the image's root. */
async function stage(items: CopyItem[], staged: string, ignored: IgnoreMatcher, context: string): Promise<void> {
  for (const item of items) {
    const target = path.join(staged, item.dest);
    if (item.unpack) {
      await fsp.mkdir(target, { recursive: true, mode: 0o755 });
      await tar.x({ file: item.source, cwd: target, preserveOwner: false });
      continue;
    }
    await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    await fsp.cp(item.source, target, {
      recursive: true,
      // Host programs and libraries are copied as files; context symlinks stay symlinks.
      ...(item.follow ? { dereference: true } : { verbatimSymlinks: true }),
      force: true,
      filter: item.follow ? undefined : (src) => src === item.source || !ignored(path.relative(context, src).split(path.sep).join('/')),
    });
  }
}

export function formatSize(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}
