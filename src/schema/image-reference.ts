// Image references, as Docker and the OCI distribution spec write them:
//   [HOST[:PORT]/]PATH[:TAG][@sha256:HEX]
// The first component is a registry host when it has a "." or a ":" or is
// "localhost" (Docker's rule); without one the image is local to carte or,
// for `carte pull`, on docker.io (library/ for one-component names).
// Pure: no I/O.
import { CarteError } from '../errors.js';

export interface ImageReference {
  /** `127.0.0.1:5000`, `registry.example`; null when the reference names none. */
  registry: string | null;
  /** `team/app`. */
  repository: string;
  tag: string | null;
  /** `sha256:<64 hex>`. */
  digest: string | null;
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const HOST = '(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]{1,5})?';
const REFERENCE = new RegExp(`^(?:(${HOST})/)?(${COMPONENT}(?:/${COMPONENT})*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$`);

/**
 * The manifest schema's pattern for `image:` (a registry host, when there is
 * one, has a "." or a ":" or is localhost, as parseReference reads it).
 */
export const IMAGE_REFERENCE_PATTERN = `^(?:(?:localhost|\\[[0-9A-Fa-f:]+\\]|[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+)(?::[0-9]{1,5})?/|[A-Za-z0-9-]+:[0-9]{1,5}/)?${COMPONENT}(?:/${COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`;

export const PULL_POLICIES = ['IfNotPresent', 'Always', 'Never'] as const;

/** The hint every refusal ends with. */
export const REFERENCE_HINT = 'use e.g. metaverse/login:1.0, 127.0.0.1:5000/team/app:1.2 or registry.example/team/app@sha256:<64 hex>';

function looksLikeHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[');
}

/** Parses a reference; null when it is not one. */
export function parseReference(ref: string): ImageReference | null {
  // The first component is a host only by Docker's rule; otherwise it is part of the path.
  const slash = ref.indexOf('/');
  const first = slash > 0 ? ref.slice(0, slash) : '';
  if (first && !looksLikeHost(first)) {
    const m = REFERENCE.exec(`x.invalid/${ref}`);
    if (!m) return null;
    return { registry: null, repository: m[2]!, tag: m[3] ?? null, digest: m[4] ?? null };
  }
  const m = REFERENCE.exec(ref);
  if (!m) return null;
  return { registry: m[1] ?? null, repository: m[2]!, tag: m[3] ?? null, digest: m[4] ?? null };
}

/** Parses or refuses with what a reference looks like. */
export function mustParseReference(ref: string, what = 'image'): ImageReference {
  const r = parseReference(ref);
  if (!r) throw new CarteError('image', `"${ref}" is not a valid ${what} reference (${REFERENCE_HINT})`, { exitCode: 2 });
  return r;
}

/** True when the reference must come from a registry (names a host or a digest). */
export function isRegistryReference(ref: string): boolean {
  const r = parseReference(ref);
  return r !== null && (r.registry !== null || r.digest !== null);
}

/** The name the image is kept under in carte's store: the reference as written, `:latest` added when it has neither tag nor digest. */
export function localName(r: ImageReference): string {
  const name = r.registry ? `${r.registry}/${r.repository}` : r.repository;
  if (r.digest) return `${name}@${r.digest}`;
  return `${name}:${r.tag ?? 'latest'}`;
}

/** Where it is pulled from: docker.io (and library/) when no registry is named. */
export function remoteName(r: ImageReference): { registry: string; ref: string } {
  const registry = r.registry ?? 'docker.io';
  const repository = r.registry === null && !r.repository.includes('/') ? `library/${r.repository}` : r.repository;
  const suffix = r.digest ? `@${r.digest}` : `:${r.tag ?? 'latest'}`;
  return { registry, ref: `${registry}/${repository}${suffix}` };
}

/** The host without its port, brackets removed (`[::1]:5000` → `::1`). */
export function hostOf(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const i = registry.lastIndexOf(':');
  return i > 0 ? registry.slice(0, i) : registry;
}

/** Plain HTTP is allowed on loopback (as Docker allows) and on registries the daemon config lists. */
export function allowsPlainHttp(registry: string, insecure: readonly string[] = []): boolean {
  const host = hostOf(registry);
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || insecure.includes(registry);
}

/** Kubernetes' default: Always for `:latest` (or no tag), IfNotPresent otherwise; a digest never changes. */
export type PullPolicy = (typeof PULL_POLICIES)[number];
export function defaultPullPolicy(r: ImageReference): PullPolicy {
  if (r.digest) return 'IfNotPresent';
  return r.tag === null || r.tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/**
 * What the reconciler does for a service's `image:` before a create: null
 * for a local name (no registry host, no digest: carte never pulls it), else
 * the manifest's pullPolicy or its default.
 */
export function effectivePullPolicy(image: string, pullPolicy: PullPolicy | undefined): PullPolicy | null {
  const r = parseReference(image);
  if (!r || (r.registry === null && r.digest === null)) return null;
  return pullPolicy ?? defaultPullPolicy(r);
}
