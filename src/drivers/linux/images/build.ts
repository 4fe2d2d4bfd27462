// Builds an image from a Cartefile, stage by stage (FROM … AS name); the last
// stage is the image. Each COPY/ADD and each RUN makes one layer (RUN runs in a
// build container: build-container.ts); the other instructions change only
// the image config. Each layer step is cached by content: its key is the
// parent layers, the instruction (after ARG/ENV substitution), the config it
// runs under, and for COPY/ADD the sha256 and mode of every input file (a
// size+mtime memo spares rehashing files that did not change); for COPY
// --from a stage or image, that source's layer digests, which are content
// digests themselves. An unchanged rebuild reuses every layer.
//
// What a build may read (issue "trust boundary"): host files only from the
// allowed prefixes and never from the deny list (host-policy.ts), context
// files only inside the context (context-sources.ts), archive entries only
// inside DEST (archive.ts). Every source is judged before its step's cache
// lookup, so a refused source is never answered from the cache either.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { formatMemory } from '../../../schema/units.js';
import { spaceOf } from '../../../util/disk.js';
import { isRegistryReference } from '../../../schema/image-reference.js';
import { minimatch } from 'minimatch';
import { CarteError, CartefileError } from '../../../errors.js';
import { DurableJsonFile } from '../../../util/durable-json-file.js';
import type { BuildSandbox } from '../build-container.js';
import { pruneUpper } from '../build-container.js';
import type { Runner } from '../exec.js';
import { resolveInRoot } from '../image-file.js';
import { scanArchive, unpackArchive } from './archive.js';
import { parseCartefile, type Step } from './cartefile.js';
import { folderLinksRefusal, readContextFile, resolveContextSource } from './context-sources.js';
import { verifiedCopy } from './verified-copy.js';
import { sharedLibraries } from './host-binary.js';
import { DEFAULT_HOST_COPY_PREFIXES, type HostCopyRules } from './host-policy.js';
import { checkHostPath, hostCopyRules } from './host-sources.js';
import { parseIgnore, type IgnoreMatcher } from './ignore.js';
import { EMPTY_CONFIG, normalizeRef, type ImageConfig, type ImageRecord, type ImageStore } from './store.js';

export interface BuildRequest {
  context: string;
  /** Cartefile path, relative to the context unless absolute; default `Cartefile`. */
  cartefile?: string;
  tag: string;
  args?: Record<string, string>;
  onProgress?: (line: string) => void;
  /** Host folders this build's `COPY --from=host` may read (its source's policy section); default the builder's. */
  hostCopyPrefixes?: readonly string[];
  /** RUN steps join carte's bridge (`carte build --network`; the caller checked the policy's builds.network). */
  network?: boolean;
}

export interface BuildResult {
  ref: string;
  image: ImageRecord;
  cachedSteps: number;
  steps: number;
}

/** The server policy's say over builds (it comes from the policy file; absent settings take the defaults). */
export interface ImageBuilderOptions {
  /** Host folders `COPY --from=host` may read; default DEFAULT_HOST_COPY_PREFIXES. Absolute paths. */
  hostCopyPrefixes?: readonly string[];
  /** CARTE_HOME, never readable by a build; default the image store's home (which is CARTE_HOME). */
  home?: string;
  /** Runs RUN steps and mounts stages for COPY --from (needs root); without it those steps are refused. */
  sandbox?: BuildSandbox | null;
  /** The server policy's disk reserve (bytes kept free on CARTE_HOME's filesystem); a layer that leaves less fails its step. */
  diskReserveBytes?: () => number;
  /** Pulls a registry reference that is not stored yet (FROM or COPY --from an image); without it such images must be pulled first. */
  pull?: (ref: string) => Promise<void>;
}

/** One file (or folder) a COPY puts into the image. */
interface CopyItem {
  /** Its real path, checked: what is copied is what was judged. */
  source: string;
  /** For context items: its name relative to the context, which .carteignore patterns match. */
  rel: string;
  /** For host folders: what the policy leaves out, relative to `source`. */
  skip?: ReadonlySet<string>;
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
    case 'FROM': return `FROM ${step.image}${step.name !== undefined ? ` AS ${step.name}` : ''}`;
    case 'COPY': return step.text;
    case 'RUN': return step.text;
    case 'ENV': return `ENV ${step.vars.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'LABEL': return `LABEL ${step.labels.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    case 'WORKDIR': return `WORKDIR ${step.path}`;
    case 'CMD': case 'ENTRYPOINT': return `${step.op} ${JSON.stringify(step.argv)}`;
    case 'EXPOSE': return `EXPOSE ${step.ports.join(' ')}`;
    case 'USER': return `USER ${step.user}`;
  }
}

export class ImageBuilder {
  private readonly hostCopyPrefixes: readonly string[];
  private readonly home: string;
  private readonly sandbox: BuildSandbox | null;

  private readonly pull: ((ref: string) => Promise<void>) | null;
  private readonly diskReserveBytes: () => number;

  constructor(private readonly images: ImageStore, private readonly runner: Runner, options: ImageBuilderOptions = {}) {
    this.sandbox = options.sandbox ?? null;
    this.pull = options.pull ?? null;
    this.diskReserveBytes = options.diskReserveBytes ?? (() => 0);
    this.hostCopyPrefixes = options.hostCopyPrefixes ?? DEFAULT_HOST_COPY_PREFIXES;
    const bad = this.hostCopyPrefixes.find((p) => !path.isAbsolute(p));
    if (bad !== undefined) throw new CarteError('image', `host copy prefix "${bad}" is not an absolute path`, { exitCode: 2 });
    this.home = options.home ?? images.home;
  }

  /** Fails the step when what it wrote left less than the server policy's disk reserve free (builds have no quota of their own). */
  private checkDiskReserve(fail: (message: string) => never, stepText: string): void {
    const reserve = this.diskReserveBytes();
    if (reserve <= 0) return;
    const space = spaceOf(this.images.home);
    if (!space || space.freeBytes >= reserve) return;
    fail(`${stepText}: only ${formatMemory(space.freeBytes)} is left free on ${space.mount} (holding CARTE_HOME) after this step, below the server policy's disk reserve of ${formatMemory(reserve)}; its files are not kept`);
  }

  /** A stored image, or a registry reference pulled once when it is not stored yet (as FROM does in Docker). */
  private async baseImage(ref: string, notFound: string): Promise<Awaited<ReturnType<ImageStore['get']>>> {
    const stored = await this.images.get(ref).catch(() => null);
    if (stored) return stored;
    if (!isRegistryReference(ref)) throw new Error(notFound);
    if (!this.pull) throw new Error(`not stored, and this build cannot pull (pull it first: carte pull ${ref})`);
    await this.pull(ref);
    return this.images.get(ref);
  }

  private cacheFile() {
    return new DurableJsonFile<Record<string, string>>(path.join(this.images.imagesDir, 'build-cache.json'));
  }

  async build(req: BuildRequest): Promise<BuildResult> {
    const ref = normalizeRef(req.tag);
    if (!fs.statSync(path.resolve(req.context), { throwIfNoEntry: false })?.isDirectory()) {
      throw new CartefileError(req.context, 0, 'the build context is not a folder');
    }
    // A context is built only by its real path: admission stores a manifest's context that way,
    // so a folder swapped for a link out of the tree before a rebuild (a restart, a retry) is
    // refused here (an outside test had the daemon copy /root like that). Links inside it are judged below.
    const context = fs.realpathSync(path.resolve(req.context));
    if (context !== path.resolve(req.context)) {
      throw new CartefileError(req.context, 0, `the build context leads to ${context} through a symbolic link; carte builds a context only by its real path`);
    }
    const cartefile = path.resolve(path.resolve(req.context), req.cartefile ?? 'Cartefile');
    const display = path.relative(process.cwd(), cartefile) || cartefile;
    const read = await readContextFile(context, path.resolve(req.context), cartefile, 'the Cartefile');
    if (read.kind === 'refused') throw new CartefileError(display, 0, read.reason);
    if (read.kind === 'absent') throw new CartefileError(display, 0, 'cannot read the Cartefile (give its path with -f)');
    const steps = parseCartefile(read.text, display, req.args);
    const ignoreFile = await readContextFile(context, context, path.join(context, '.carteignore'), 'the .carteignore');
    if (ignoreFile.kind === 'refused') throw new CartefileError(path.relative(process.cwd(), path.join(req.context, '.carteignore')), 0, ignoreFile.reason);
    const ignoreText = ignoreFile.kind === 'text' ? ignoreFile.text : '';
    const ignored = parseIgnore(ignoreText);
    const rules = hostCopyRules(req.hostCopyPrefixes ?? this.hostCopyPrefixes, this.home);
    const progress = req.onProgress ?? (() => {});
    const cache = (await this.cacheFile().read()) ?? {};

    const memo = new ContentMemo(path.join(this.images.imagesDir, 'content-memo.json'));
    await memo.load();
    // A builder killed earlier (kill -9) may have left a build container: it goes before this build makes one.
    let swept = false;
    const sandbox = async (): Promise<BuildSandbox | null> => {
      if (this.sandbox && !swept) {
        swept = true;
        await this.sandbox.sweep();
      }
      return this.sandbox;
    };

    let config: ImageConfig = structuredClone(EMPTY_CONFIG);
    let layers: string[] = [];
    const stages: Array<{ config: ImageConfig; layers: string[] }> = [];
    let cached = 0;
    /** The layer an earlier build made for the same key, when it is still stored. */
    const reuseCached = (key: string, prefix: string): boolean => {
      const hit = cache[key];
      if (!hit || !this.images.hasLayer(hit)) return false;
      layers.push(hit);
      cached++;
      progress(`${prefix} (cached)`);
      return true;
    };
    /** A new layer from a staging folder `fill` fills: stored, added to the stage, cached under `key`; the folder is removed on failure. */
    const addStagedLayer = async (key: string, prefix: string, fail: (message: string) => never, stepText: string, fill: (staged: string) => Promise<void>): Promise<void> => {
      const staged = await this.images.stagingDir();
      try {
        await fill(staged);
        this.checkDiskReserve(fail, stepText);
        const layer = await this.images.addLayer(staged);
        layers.push(layer.digest);
        cache[key] = layer.digest;
        progress(`${prefix} → layer ${layer.digest.slice(0, 12)} (${formatSize(layer.size)})`);
      } catch (e) {
        await fsp.rm(staged, { recursive: true, force: true });
        throw e;
      }
    };
    for (const [i, step] of steps.entries()) {
      const prefix = `STEP ${i + 1}/${steps.length}: ${describe(step)}`;
      const fail = (message: string): never => {
        throw new CartefileError(display, step.line, message);
      };
      switch (step.op) {
        case 'FROM':
          if (step.stage > 0) stages.push({ config, layers });
          config = structuredClone(EMPTY_CONFIG);
          layers = [];
          if (step.fromStage !== undefined) {
            config = structuredClone(stages[step.fromStage]!.config);
            layers = [...stages[step.fromStage]!.layers];
          } else if (step.image !== 'scratch') {
            const base = await this.baseImage(step.image, 'no such local image or earlier stage (build or import it first)').catch((e: Error) => fail(`FROM ${step.image}: ${e.message}`));
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
        case 'RUN': {
          const env = [...step.args.map(([k, v]) => `${k}=${v}`), ...config.env];
          const key = hashOf({ op: 'RUN', layers, argv: step.argv, env, workdir: config.workingDir, user: config.user });
          const hit = cache[key];
          if (hit === '' || (hit && this.images.hasLayer(hit))) {
            if (hit) layers.push(hit);
            cached++;
            progress(`${prefix} (cached)`);
            break;
          }
          const box = await sandbox();
          if (!box) fail(`${step.text}: RUN needs root and runc (a build container): run the build as root`);
          progress(prefix);
          const run = await box!.run({
            layers: layers.map((d) => this.images.layerPath(d)), argv: step.argv, env, cwd: config.workingDir, user: config.user,
            label: `${display}:${step.line}`, network: req.network === true, onOutput: (line) => progress(`  | ${line}`),
          });
          try {
            if (run.timedOut) fail(`${step.text}: the step ran out of time (the server policy's builds.limits.timeout) and was killed`);
            if (run.code !== 0) fail(`${step.text}: the command exited with code ${run.code} (step ${i + 1}/${steps.length})`);
            const tooDeep = (e: NodeJS.ErrnoException): never => {
              if (e.code === 'ENAMETOOLONG') fail(`${step.text}: it made a path too long to store as a layer (folders nested too deep); keep paths under 4096 characters`);
              throw e;
            };
            for (const dropped of await pruneUpper(run.upper).catch(tooDeep)) progress(`${prefix}: left out of the layer: ${dropped} (device nodes, FIFOs and sockets are not kept)`);
            if (!(await fsp.readdir(run.upper)).length) {
              cache[key] = '';
              progress(`${prefix} → no changes`);
              break;
            }
            this.checkDiskReserve(fail, step.text);
            const layer = await this.images.addLayer(run.upper).catch(tooDeep);
            layers.push(layer.digest);
            cache[key] = layer.digest;
            progress(`${prefix} → layer ${layer.digest.slice(0, 12)} (${formatSize(layer.size)})`);
          } finally {
            await run.dispose();
          }
          break;
        }
        case 'COPY': {
          const owner = step.chown !== undefined ? parseChown(step.chown, fail) : null;
          if (step.source === 'stage' || step.source === 'image') {
            const from = step.source === 'stage' ? stages[step.fromStage!]!
              : await this.baseImage(step.fromImage!, 'no such stage or local image').catch((e: Error) => fail(`COPY --from=${step.fromImage}: ${e.message}`));
            const key = hashOf({ op: 'COPY-FROM', layers, text: step.text, workdir: config.workingDir, from: from.layers });
            if (reuseCached(key, prefix)) break;
            const box = await sandbox();
            if (!box) fail(`${step.text}: COPY --from a stage or image needs root (its layers are mounted): run the build as root`);
            await addStagedLayer(key, prefix, fail, step.text, async (staged) => {
              await box!.withView(from.layers.map((d) => this.images.layerPath(d)), (view) => this.copyFromView(step, view, staged, config.workingDir, fail));
              if (owner) await chownTree(path.join(staged, path.posix.resolve(config.workingDir, step.dest)), owner);
            });
            break;
          }
          // The checks live in gathering the items, before the cache lookup below.
          const items = step.source === 'host'
            ? await this.hostItems(step, config.workingDir, rules, fail, (note) => progress(`${prefix}: ${note}`))
            : await contextItems(step, context, config.workingDir, ignored, fail);
          const key = await cacheKey(step, layers, config.workingDir, ignoreText, items, memo);
          if (reuseCached(key, prefix)) break;
          await addStagedLayer(key, prefix, fail, step.text, async (staged) => {
            await stage(items, staged, ignored, (reason) => fail(`${step.text}: ${reason}`), context);
            if (owner) for (const item of items) await chownTree(path.join(staged, item.dest), owner);
          });
          break;
        }
      }
    }
    await this.cacheFile().write(cache);
    await memo.save();
    const image = await this.images.save(config, layers, ref);
    progress(`built ${ref} (id ${image.id.slice(0, 12)}, ${formatSize(image.size)}, ${layers.length} layer${layers.length === 1 ? "" : "s"})`);
    const layerSteps = steps.filter((s) => s.op === 'COPY' || s.op === 'RUN').length;
    return { ref, image, cachedSteps: cached, steps: layerSteps };
  }

  /** COPY --from=<stage|image>: sources resolved inside that image's root (links as the container sees them), copied with owners and modes. */
  private async copyFromView(step: Extract<Step, { op: 'COPY' }>, view: string, staged: string, workdir: string, fail: (m: string) => never): Promise<void> {
    const dest = path.posix.resolve(workdir, step.dest);
    const intoDir = step.sources.length > 1 || step.dest.endsWith('/');
    for (const source of step.sources) {
      if (isGlob(source)) fail(`${step.text}: globs are not supported with --from; name the files`);
      const found = await resolveInRoot(view, path.posix.resolve('/', source));
      if (!found.found) fail(`${step.text}: "${source}" does not exist in ${step.source === 'stage' ? `stage ${step.fromStage}` : step.fromImage}`);
      const { hostPath, stat } = found as Extract<typeof found, { found: true }>;
      const target = stat.isDirectory() ? dest : intoDir ? path.posix.join(dest, path.posix.basename(source)) : dest;
      const into = path.join(staged, target);
      if (stat.isDirectory()) {
        await fsp.mkdir(into, { recursive: true, mode: 0o755 });
        await this.runner.run('cp', ['-a', '--', `${hostPath}/.`, into], { step: 'copy from the stage for', resource: step.text });
      } else {
        await fsp.mkdir(path.dirname(into), { recursive: true, mode: 0o755 });
        await this.runner.run('cp', ['-a', '--', hostPath, into], { step: 'copy from the stage for', resource: step.text });
      }
    }
  }

  /** A host program (or file or folder) and, for programs, the shared libraries it needs. */
  private async hostItems(step: Extract<Step, { op: 'COPY' }>, workdir: string, rules: HostCopyRules, fail: (m: string) => never, note: (line: string) => void): Promise<CopyItem[]> {
    const dest = path.posix.resolve(workdir, step.dest);
    const intoDir = step.sources.length > 1 || step.dest.endsWith('/');
    const items: CopyItem[] = [];
    for (const source of step.sources) {
      const checked = await checkHostPath(source, 'it', rules);
      if (checked.kind === 'missing') fail(`host file "${source}" does not exist on this machine`);
      if (checked.kind === 'refused') fail(`COPY --from=host ${source}: ${checked.reason}`);
      const { real, leftOut } = checked as Extract<typeof checked, { kind: 'ok' }>;
      for (const l of leftOut) note(`left out: ${l.reason}`);
      const skip = new Set(leftOut.map((l) => l.sub));
      items.push({ source: real, rel: '', skip, dest: intoDir ? path.posix.join(dest, path.basename(source)) : dest, follow: true, unpack: false });
      const st = await fsp.stat(real);
      if (st.isFile() && st.mode & 0o111) {
        // ldd's answer is judged like a source: a library path is only a path the loader would open.
        for (const lib of await sharedLibraries(this.runner, real)) {
          const libCheck = await checkHostPath(lib, `its library ${lib}`, rules);
          if (libCheck.kind === 'missing') fail(`COPY --from=host ${source}: its library ${lib} is missing on this machine`);
          if (libCheck.kind === 'refused') fail(`COPY --from=host ${source}: ${libCheck.reason}`);
          items.push({ source: (libCheck as { real: string }).real, rel: '', dest: lib, follow: true, unpack: false });
        }
      }
    }
    return items;
  }
}

/** Context files a COPY/ADD names, after globs and .carteignore. */
async function contextItems(step: Extract<Step, { op: 'COPY' }>, context: string, workdir: string, ignored: IgnoreMatcher, fail: (m: string) => never): Promise<CopyItem[]> {
  const dest = path.posix.resolve(workdir, step.dest);
  const matches: Array<{ rel: string; pattern: string }> = [];
  for (const pattern of step.sources) {
    // Normalized on the name first (the parser refused what climbs out), so `..` never reaches the disk.
    const rel = path.posix.normalize(pattern).replace(/^\.\/?/, '').replace(/\/+$/, '');
    if (isGlob(rel)) {
      const found = (await listContext(context, ignored)).filter((f) => minimatch(f, rel, { dot: true }));
      if (!found.length) fail(`COPY source "${pattern}" matches nothing in the build context`);
      matches.push(...found.map((f) => ({ rel: f, pattern: f })));
    } else {
      if (rel !== '' && ignored(rel)) fail(`COPY source "${pattern}" is not in the build context (excluded by .carteignore)`);
      matches.push({ rel, pattern });
    }
  }
  const intoDir = matches.length > 1 || step.dest.endsWith('/');
  const items: CopyItem[] = [];
  for (const { rel, pattern } of matches) {
    const found = await resolveContextSource(context, rel);
    if (found.kind === 'missing') fail(`COPY source "${pattern}" is not in the build context`);
    if (found.kind === 'refused') fail(`${step.text}: ${found.reason}`);
    const { real, isDir } = found as { real: string; isDir: boolean };
    const unpack = step.extract && !isDir && ARCHIVE.test(rel);
    // A folder's contents go into the destination; a file goes to it (or into it, for several sources).
    const target = isDir || unpack ? dest : intoDir ? path.posix.join(dest, path.basename(rel)) : dest;
    if (isDir) {
      const links = await folderLinksRefusal(context, real, rel, target, ignored);
      if (links) fail(`${step.text}: ${links}`);
    }
    if (unpack) {
      const entries = await scanArchive(real).catch((e: Error) => fail(`${step.text}: ${rel} is not a readable tar archive (${e.message})`));
      if (entries) fail(`${step.text}: ${rel} holds ${entries}`);
    }
    items.push({ source: real, rel, dest: target, follow: false, unpack });
  }
  return items;
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

/**
 * sha256 of files' contents, remembered by (path, size, mtime, inode): a file
 * whose stat did not change is not read again. The cache key is the content;
 * this memo only spares the rereading (kept in images/content-memo.json).
 */
const MEMO_LIMIT = 100_000;

export class ContentMemo {
  private entries: Record<string, string> = {};
  private readonly seen: Record<string, string> = {};

  constructor(private readonly file: string) {}

  async load(): Promise<void> {
    this.entries = (await new DurableJsonFile<Record<string, string>>(this.file).read().catch(() => null)) ?? {};
  }

  /**
   * Keeps what this build read, and other builds' entries for other paths (a
   * file's older stats are dropped), at most MEMO_LIMIT. Unchanged: not written.
   */
  async save(): Promise<void> {
    const fresh = Object.keys(this.seen).filter((k) => this.entries[k] === undefined);
    if (!fresh.length) return;
    const paths = new Set(Object.keys(this.seen).map((k) => k.split('\0')[0]));
    const kept = Object.entries(this.entries).filter(([k]) => !paths.has(k.split('\0')[0]!)).slice(-(MEMO_LIMIT - Object.keys(this.seen).length));
    await new DurableJsonFile<Record<string, string>>(this.file).write({ ...Object.fromEntries(kept), ...this.seen });
  }

  async hash(p: string, st: fs.Stats): Promise<string> {
    const key = `${p}\0${st.size}\0${st.mtimeMs}\0${st.ino}`;
    let digest = this.entries[key];
    if (digest === undefined) {
      const h = createHash('sha256');
      for await (const chunk of fs.createReadStream(p)) h.update(chunk as Buffer);
      digest = h.digest('hex');
    }
    this.seen[key] = digest;
    return digest;
  }
}

/** Every file a step reads, as (where it lands, mode, content sha256): the step's inputs, by content. */
async function inputSignature(items: CopyItem[], memo: ContentMemo): Promise<string[]> {
  const sig: string[] = [];
  const visit = async (p: string, item: CopyItem) => {
    const rel = path.relative(item.source, p);
    if (item.skip?.has(rel)) return;
    const st = item.follow ? await fsp.stat(p) : await fsp.lstat(p);
    const where = `${item.dest} ${rel}`;
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) sig.push(`L ${where} ${await fsp.readlink(p)}`);
    else if (st.isDirectory()) {
      sig.push(`D ${where} ${mode}`);
      for (const e of (await fsp.readdir(p)).sort()) await visit(path.join(p, e), item);
    } else sig.push(`F ${where} ${mode} ${await memo.hash(p, st)}`);
  };
  for (const item of items) await visit(item.source, item);
  return sig;
}

const hashOf = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

async function cacheKey(step: Extract<Step, { op: 'COPY' }>, layers: string[], workdir: string, ignoreText: string, items: CopyItem[], memo: ContentMemo): Promise<string> {
  const inputs = await inputSignature(items, memo);
  return hashOf({ layers, text: step.text, workdir, ignore: ignoreText, dests: items.map((i) => i.dest), inputs });
}

/** `--chown=UID[:GID]`: numeric ids (names would need the destination's /etc/passwd). */
function parseChown(value: string, fail: (m: string) => never): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  if (!m) fail(`--chown=${value}: give numeric ids, e.g. --chown=1000:1000`);
  return { uid: Number(m![1]), gid: Number(m![2] ?? m![1]) };
}

/** Gives a copied tree (not the folders above it) to an owner; links themselves, never their targets. */
async function chownTree(p: string, owner: { uid: number; gid: number }): Promise<void> {
  const st = await fsp.lstat(p).catch(() => null);
  if (!st) return;
  await fsp.lchown(p, owner.uid, owner.gid);
  if (st.isDirectory()) for (const e of await fsp.readdir(p)) await chownTree(path.join(p, e), owner);
}

/** Copies the items into a staging folder laid out as the image's root. */
async function stage(items: CopyItem[], staged: string, ignored: IgnoreMatcher, refuse: (reason: string) => never, context: string): Promise<void> {
  for (const item of items) {
    const target = path.join(staged, item.dest);
    if (item.unpack) {
      await fsp.mkdir(target, { recursive: true, mode: 0o755 });
      const refusal = await unpackArchive(item.source, target);
      if (refusal) refuse(`${item.rel} holds ${refusal}`);
      continue;
    }
    await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    if (!item.follow) {
      // The context is its author's, who may swap a folder for a link while it is copied: each
      // object is checked as it is opened (verified-copy.ts). Links inside it stay links.
      const keep = (src: string) => src === item.source || !ignored(path.posix.join(item.rel, path.relative(item.source, src).split(path.sep).join('/')));
      await verifiedCopy(item.source, target, { root: context, keep, refuse });
      continue;
    }
    // Host programs and libraries, from folders only root writes, copied as files.
    await fsp.cp(item.source, target, {
      recursive: true, dereference: true, force: true,
      filter: (src) => !item.skip?.has(path.relative(item.source, src)),
    });
  }
}

export function formatSize(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}
