// `carte pull` and `carte push`: skopeo moves the bytes between a registry
// and an OCI layout folder (staged in the layer store's folder, so gc removes
// one a killed pull left); carte owns the rest: which manifest of an index
// (linux/amd64), the digest checks, and the import into its layer store
// (oci.ts), which stores nothing when any blob is wrong.
import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError } from '../../../errors.js';
import { exportOciLayout, importOciLayout } from './oci.js';
import { allowsPlainHttp, localName, mustParseReference, remoteName, type ImageReference } from '../../../schema/image-reference.js';
import { runSkopeo, type SkopeoCredential } from './skopeo.js';
import type { ImageRecord, ImageStore } from './store.js';
import { DurableJsonFile } from '../../../util/durable-json-file.js';
import { acquireLock } from '../../../util/lock.js';

/** How carte reaches registries: which may be plain HTTP, the logins, limits. */
export interface RegistryAccess {
  /** `host:port` of registries allowed over plain HTTP beyond loopback ones (the daemon config's registries.insecure). */
  insecure: readonly string[];
  /** The login for a registry (`carte login`), or null. */
  credential(registry: string): Promise<SkopeoCredential | null>;
  /** A root-only tmpfs folder where each call's authfile lives while it runs. */
  authRoot: string;
  /** Longest a whole copy may take (default 10 minutes); a manifest look-up gets a tenth, at least 30 s (at most all of it). */
  timeoutMs?: number;
}

export interface TransferOptions {
  /** Progress lines (skopeo's own, then carte's import); none: quiet. */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

export interface PullResult {
  /** The name the image is kept under (`127.0.0.1:5000/team/app:1`). */
  name: string;
  image: ImageRecord;
  /** The digest of the manifest (or index) the reference named. */
  digest: string;
  /** The linux/amd64 image manifest imported. */
  manifestDigest: string;
  /** True when the store already had exactly this image under this name: nothing was copied. */
  upToDate: boolean;
}

/** What was last pulled under each name (images/pulled.json): a pull that finds the same manifest copies nothing. */
interface PulledRecord {
  manifestDigest: string;
  imageId: string;
}

const pulledFile = (images: ImageStore) => new DurableJsonFile<Record<string, PulledRecord>>(path.join(images.imagesDir, 'pulled.json'));

async function recordPulled(images: ImageStore, name: string, record: PulledRecord): Promise<void> {
  const lock = await acquireLock(path.join(images.imagesDir, 'pulled.lock'));
  try {
    const file = pulledFile(images);
    const all = (await file.read()) ?? {};
    all[name] = record;
    await file.write(all);
  } finally {
    await lock.release();
  }
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);

interface IndexEntry {
  digest: string;
  mediaType?: string;
  platform?: { os?: string; architecture?: string; variant?: string };
}

/** The linux/amd64 entry of an index or manifest list; refuses, listing the platforms, without one. */
export function selectPlatform(index: { manifests?: IndexEntry[] }, what: string): string {
  const entries = index.manifests ?? [];
  const hit = entries.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64');
  if (hit) return hit.digest;
  const platforms = entries.map((m) => [m.platform?.os ?? '?', m.platform?.architecture ?? '?', m.platform?.variant].filter(Boolean).join('/'));
  throw new CarteError('registry', `${what}: no linux/amd64 image in its index (it has ${platforms.length ? platforms.join(', ') : 'none'})`);
}

export const sha256Of = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function tlsFlags(registry: string, access: RegistryAccess, direction: 'src' | 'dest' | 'plain'): string[] {
  if (!allowsPlainHttp(registry, access.insecure)) return [];
  return [direction === 'plain' ? '--tls-verify=false' : `--${direction}-tls-verify=false`];
}

/** Adds a hint to messages about registries carte cannot reach from here. */
function reachHint(r: ImageReference, registry: string, e: unknown): never {
  if (e instanceof CarteError && r.registry === null && /dial tcp|no such host|i\/o timeout|lookup |did not answer|network is unreachable/i.test(e.message)) {
    throw new CarteError('registry', `${e.message} (a reference without a registry host means ${registry}, which this machine cannot reach; name a registry, e.g. 127.0.0.1:5000/${r.repository}:${r.tag ?? 'latest'})`);
  }
  throw e;
}

/** Pulls `ref` into the store: looks up its manifest, picks linux/amd64, copies it by digest, checks and imports it. */
export async function pullImage(images: ImageStore, ref: string, access: RegistryAccess, opts: TransferOptions = {}): Promise<PullResult> {
  const r = mustParseReference(ref);
  const { registry, ref: remote } = remoteName(r);
  const name = localName(r);
  const what = `pull ${ref}`;
  const timeoutMs = access.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const credential = await access.credential(registry);
  const auth = credential ? { registry, credential } : null;
  const base = { what, authRoot: access.authRoot, auth, signal: opts.signal };

  // 1. The manifest the reference names, raw: its digest is what a pinned reference is checked against.
  const raw = await runSkopeo({ ...base, args: ['inspect', '--raw', ...tlsFlags(registry, access, 'plain'), `docker://${remote}`], timeoutMs: Math.min(timeoutMs, Math.max(30_000, timeoutMs / 10)) })
    .catch((e: unknown) => reachHint(r, registry, e));
  const digest = sha256Of(raw);
  if (r.digest && digest !== r.digest) throw new CarteError('registry', `${what}: the registry sent a manifest whose digest is ${digest}, not ${r.digest}; nothing was stored`);
  let manifest: { mediaType?: string; manifests?: IndexEntry[]; schemaVersion?: number };
  try {
    manifest = JSON.parse(raw) as typeof manifest;
  } catch {
    throw new CarteError('registry', `${what}: the registry's manifest is not JSON`);
  }
  const isIndex = INDEX_TYPES.has(manifest.mediaType ?? '') || (manifest.mediaType === undefined && Array.isArray(manifest.manifests));
  const manifestDigest = isIndex ? selectPlatform(manifest, what) : digest;

  // The same manifest as last time, and the name still leads to that image: nothing to copy (pullPolicy Always stays cheap).
  const last = ((await pulledFile(images).read()) ?? {})[name];
  if (last?.manifestDigest === manifestDigest) {
    const current = await images.get(name).catch(() => null);
    if (current?.id === last.imageId) {
      opts.onProgress?.(`${ref}: up to date (manifest ${manifestDigest.slice(7, 19)})`);
      return { name, image: current, digest, manifestDigest, upToDate: true };
    }
  }

  // 2. That image, by digest (a tag moved meanwhile changes nothing), as the registry stored it.
  const layout = await images.stagingDir();
  try {
    const repo = remote.slice(0, remote.search(/[:@][^/]*$/));
    opts.onProgress?.(`${ref}: ${isIndex ? `index ${digest.slice(7, 19)} → linux/amd64 ` : ''}manifest ${manifestDigest.slice(7, 19)}`);
    await runSkopeo({
      ...base, timeoutMs, onLine: opts.onProgress,
      args: ['copy', '--preserve-digests', '--retry-times', '2', ...(opts.onProgress ? [] : ['--quiet']), ...tlsFlags(registry, access, 'src'),
        `docker://${repo}@${manifestDigest}`, `oci:${layout}:pulled`],
    });
    const index = JSON.parse(await fsp.readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests?: IndexEntry[] };
    const got = index.manifests?.[0]?.digest;
    if (got !== manifestDigest) throw new CarteError('registry', `${what}: the copied manifest is ${got ?? 'missing'}, not ${manifestDigest}; nothing was stored`);
    // 3. The import checks every blob against its digest and stores nothing on a mismatch.
    const image = await importOciLayout(images, layout, { tag: name, select: 'pulled', onProgress: opts.onProgress });
    await recordPulled(images, name, { manifestDigest, imageId: image.id });
    return { name, image, digest, manifestDigest, upToDate: false };
  } catch (e) {
    if (e instanceof CarteError && !e.message.startsWith(what)) throw new CarteError(e.code, `${what}: ${e.message}`, { exitCode: e.exitCode, details: [...e.details], cause: e });
    throw e;
  } finally {
    await fsp.rm(layout, { recursive: true, force: true });
  }
}

/** Pushes local image `source` to `dest`; resolves with the pushed manifest's digest. */
export async function pushImage(images: ImageStore, source: string, dest: string, access: RegistryAccess, opts: TransferOptions = {}): Promise<{ digest: string; ref: string }> {
  const r = mustParseReference(dest);
  if (r.digest) throw new CarteError('registry', `push ${dest}: a push names a tag, not a digest (the registry gives the digest)`, { exitCode: 2 });
  const { registry, ref: remote } = remoteName(r);
  const what = `push ${source} to ${remote}`;
  await images.get(source);
  const credential = await access.credential(registry);
  const layout = await images.stagingDir();
  try {
    const { manifestDigest } = await exportOciLayout(images, source, layout);
    const digestFile = path.join(layout, '.pushed-digest');
    await runSkopeo({
      what, authRoot: access.authRoot, auth: credential ? { registry, credential } : null, signal: opts.signal,
      timeoutMs: access.timeoutMs ?? DEFAULT_TIMEOUT_MS, onLine: opts.onProgress,
      args: ['copy', '--preserve-digests', '--retry-times', '2', '--digestfile', digestFile, ...(opts.onProgress ? [] : ['--quiet']),
        ...tlsFlags(registry, access, 'dest'), `oci:${layout}`, `docker://${remote}`],
    }).catch((e: unknown) => reachHint(r, registry, e));
    const digest = (await fsp.readFile(digestFile, 'utf8')).trim();
    if (digest !== manifestDigest) throw new CarteError('registry', `${what}: the registry stored manifest ${digest}, not ${manifestDigest}`);
    return { digest, ref: remote };
  } finally {
    await fsp.rm(layout, { recursive: true, force: true });
  }
}
