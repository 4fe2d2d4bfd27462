// The pure parts of reading and writing OCI images: media types, descriptor
// checks, platform selection, the image config ↔ carte's ImageConfig, and the
// whiteout names of OCI layer tars. No fs, no clock: unit-tested as tables.
// Spec: github.com/opencontainers/image-spec (descriptor.md, image-index.md,
// manifest.md, config.md, layer.md); Docker's v2 schema 2 types are accepted
// too (skopeo and `docker save` write them).
import { CarteError } from '../../../errors.js';
import { EMPTY_CONFIG, type ImageConfig } from './store.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

const INDEX_TYPES = new Set<string>([MEDIA.ociIndex, MEDIA.dockerList]);
const MANIFEST_TYPES = new Set<string>([MEDIA.ociManifest, MEDIA.dockerManifest]);

export type Compression = 'none' | 'gzip' | 'zstd';

/** How a layer blob is compressed, from its media type; null for a type carte cannot unpack. */
export function layerCompression(mediaType: string): Compression | null {
  switch (mediaType) {
    case 'application/vnd.oci.image.layer.v1.tar':
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
    case 'application/vnd.docker.image.rootfs.diff.tar':
      return 'none';
    case 'application/vnd.oci.image.layer.v1.tar+gzip':
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
    case 'application/vnd.docker.image.rootfs.diff.tar.gzip':
    case 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip':
      return 'gzip';
    case 'application/vnd.oci.image.layer.v1.tar+zstd':
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd':
      return 'zstd';
    default:
      return null;
  }
}

/** Compression from a blob's first bytes (docker-archive layers carry no media type). */
export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The parts of an OCI image config carte reads and writes. */
export interface OciConfig {
  created?: string;
  architecture: string;
  os: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[] | null;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: unknown[];
}

export const REF_NAME = 'org.opencontainers.image.ref.name';
/** The full name:tag, as containerd and podman annotate it (ref.name holds only the tag). */
export const IMAGE_NAME = 'io.containerd.image.name';

/** The platform carte runs. */
export const WANTED: Platform = { os: 'linux', architecture: 'amd64' };

/** `sha256:<64 hex>` → the hex; anything else (another algorithm, a path in disguise) is refused. */
export function digestHex(digest: unknown, what: string): string {
  if (typeof digest !== 'string') throw bad(`${what} has no digest`);
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw bad(`${what} has digest "${digest}"; carte reads only sha256 digests (sha256:<64 hex digits>)`);
  return m[1]!;
}

function bad(message: string): CarteError {
  return new CarteError('image', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks a descriptor's shape (digest, size, media type) and returns it typed. */
export function checkDescriptor(v: unknown, what: string): Descriptor {
  if (!isObject(v)) throw bad(`${what} is not a descriptor object`);
  digestHex(v.digest, what);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw bad(`${what} has no valid size`);
  if (typeof v.mediaType !== 'string') throw bad(`${what} has no mediaType`);
  return v as unknown as Descriptor;
}

export type Parsed = { kind: 'index'; index: Index } | { kind: 'manifest'; manifest: Manifest };

/** An index or a manifest, told apart by media type (or, when it has none, by its fields). */
export function parseIndexOrManifest(text: string, what: string, mediaType?: string): Parsed {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`${what} is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(v) || v.schemaVersion !== 2) throw bad(`${what} is not an OCI index or manifest (schemaVersion 2)`);
  const type = typeof v.mediaType === 'string' ? v.mediaType : mediaType;
  const isIndex = type ? INDEX_TYPES.has(type) : Array.isArray(v.manifests);
  const isManifest = type ? MANIFEST_TYPES.has(type) : isObject(v.config);
  if (isIndex) {
    if (!Array.isArray(v.manifests)) throw bad(`${what} is an index without a "manifests" list`);
    v.manifests.forEach((d, i) => checkDescriptor(d, `${what} manifests[${i}]`));
    return { kind: 'index', index: v as unknown as Index };
  }
  if (isManifest) {
    checkDescriptor(v.config, `${what} config`);
    if (!Array.isArray(v.layers)) throw bad(`${what} has no "layers" list`);
    v.layers.forEach((d, i) => checkDescriptor(d, `${what} layer ${i + 1}`));
    return { kind: 'manifest', manifest: v as unknown as Manifest };
  }
  throw bad(`${what} has media type "${type}", which is neither an image index nor an image manifest`);
}

export function platformName(p: Platform | undefined): string {
  if (!p) return 'unknown platform';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/**
 * The entry of an index to follow for `wanted`: the one matching OS and
 * architecture (attestation manifests, platform unknown/unknown, never match).
 * Refuses, listing the platforms there are, when none does.
 */
export function selectPlatform(manifests: Descriptor[], what: string, wanted: Platform = WANTED): Descriptor {
  const fit = manifests.filter((d) => d.platform?.os === wanted.os && d.platform?.architecture === wanted.architecture && (!wanted.variant || d.platform.variant === wanted.variant));
  if (fit.length) return fit[0]!;
  const listed = [...new Set(manifests.map((d) => platformName(d.platform)))].join(', ') || 'none';
  throw bad(`${what} has no image for ${platformName(wanted)} (it has: ${listed})`);
}

/**
 * Which entry of a layout's index.json to import: the one named by `select`
 * (a ref.name annotation, a full name annotation, or a digest); else the only
 * one; else, when the entries are platforms of one image, linux/amd64.
 */
export function selectFromLayout(index: Index, select: string | undefined): Descriptor {
  const names = (d: Descriptor) => [d.annotations?.[REF_NAME], d.annotations?.[IMAGE_NAME]].filter((n): n is string => !!n);
  if (select !== undefined) {
    const hit = index.manifests.find((d) => d.digest === select || names(d).includes(select));
    if (hit) return hit;
    const known = index.manifests.map((d) => names(d)[0] ?? d.digest).join(', ') || 'nothing';
    throw new CarteError('not-found', `the OCI layout has no image "${select}" (it has: ${known})`);
  }
  if (index.manifests.length === 1) return index.manifests[0]!;
  if (index.manifests.length === 0) throw bad('the OCI layout is empty (index.json lists no manifests)');
  if (index.manifests.every((d) => d.platform)) return selectPlatform(index.manifests, 'the OCI layout');
  throw new CarteError('image', `the OCI layout holds ${index.manifests.length} images; say which (${index.manifests.map((d) => names(d)[0] ?? d.digest).join(', ')})`, { exitCode: 2 });
}

/** The image config's run settings as carte keeps them. */
export function configFromOci(config: OciConfig): ImageConfig {
  const c = config.config ?? {};
  const strings = (v: unknown): string[] | null => (Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : null);
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(isObject(c.Labels) ? c.Labels : {})) if (typeof v === 'string') labels[k] = v;
  return {
    ...EMPTY_CONFIG,
    env: strings(c.Env) ?? [],
    entrypoint: strings(c.Entrypoint),
    cmd: strings(c.Cmd),
    workingDir: typeof c.WorkingDir === 'string' && c.WorkingDir.startsWith('/') ? c.WorkingDir : '/',
    user: typeof c.User === 'string' ? c.User : '',
    exposedPorts: Object.keys(isObject(c.ExposedPorts) ? c.ExposedPorts : {}).map((p) => (p.includes('/') ? p : `${p}/tcp`)).sort(),
    labels,
  };
}

/** Checks what carte needs of an image config: linux, layers listed as sha256 diff_ids. */
export function parseOciConfig(text: string, what: string): OciConfig {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`${what} is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(v) || !isObject(v.rootfs) || !Array.isArray(v.rootfs.diff_ids)) throw bad(`${what} is not an image config (no rootfs.diff_ids)`);
  v.rootfs.diff_ids.forEach((d, i) => digestHex(d, `${what} diff_ids[${i}]`));
  if (typeof v.os === 'string' && v.os !== 'linux') throw bad(`${what} is an image for ${v.os}; carte runs linux images`);
  return v as unknown as OciConfig;
}

/** The image config carte writes for an image (fixed key order, so the same image gives the same digest). */
export function ociConfigFrom(config: ImageConfig, diffIds: string[], created: string): OciConfig {
  const c: NonNullable<OciConfig['config']> = {};
  if (config.user) c.User = config.user;
  if (config.exposedPorts.length) c.ExposedPorts = Object.fromEntries([...config.exposedPorts].sort().map((p) => [p, {}]));
  if (config.env.length) c.Env = config.env;
  if (config.entrypoint) c.Entrypoint = config.entrypoint;
  if (config.cmd) c.Cmd = config.cmd;
  if (config.workingDir && config.workingDir !== '/') c.WorkingDir = config.workingDir;
  if (Object.keys(config.labels).length) c.Labels = Object.fromEntries(Object.entries(config.labels).sort(([a], [b]) => (a < b ? -1 : 1)));
  return { created, architecture: WANTED.architecture, os: WANTED.os, config: c, rootfs: { type: 'layers', diff_ids: diffIds } };
}

/** What a layer tar entry's name means: a plain entry, a whiteout of a lower entry, or an opaque marker of its folder. */
export type WhiteoutMeaning = { kind: 'plain' } | { kind: 'whiteout'; target: string } | { kind: 'opaque'; dir: string } | { kind: 'ignored' };

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** `a/.wh.b` deletes `a/b` below; `a/.wh..wh..opq` hides everything below `a`; other `.wh..wh.` names are aufs bookkeeping. */
export function whiteoutMeaning(entryPath: string): WhiteoutMeaning {
  const p = entryPath.replace(/\/+$/, '');
  const slash = p.lastIndexOf('/');
  const dir = slash < 0 ? '' : p.slice(0, slash);
  const base = p.slice(slash + 1);
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'plain' };
  if (base === OPAQUE_MARKER) return { kind: 'opaque', dir: normalizeEntry(dir) };
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`) || base === WHITEOUT_PREFIX) return { kind: 'ignored' };
  return { kind: 'whiteout', target: normalizeEntry(dir ? `${dir}/${base.slice(WHITEOUT_PREFIX.length)}` : base.slice(WHITEOUT_PREFIX.length)) };
}

/** `./a//b/` → `a/b`; the layer root is ''. */
export function normalizeEntry(p: string): string {
  return p.split('/').filter((s) => s !== '' && s !== '.').join('/');
}
