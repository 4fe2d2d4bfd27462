// Secrets in desired state, pure: which services use which secret (and
// which keys), whether every reference resolves, and recording a new
// version — which rolls the services that use it, as `carte restart` does:
// a new revision with the same spec and a new template hash, so the update
// strategy replaces their instances one by one and each new one reads the
// new value. The values themselves never pass through here.
import { createHash } from 'node:crypto';
import type { ManifestProblem } from '../errors.js';
import type { PathSegment } from '../schema/locate.js';
import type { ServiceSpec } from '../schema/types.js';
import { matchesSource } from '../policy/policy.js';
import { pushRevision, recordEvent, type SourceId, type StateData, type StoredSecret } from '../store/state.js';

/** One place a service uses a secret: `env TOKEN` or `volume /run/secrets/x`, with the keys it needs (null: all). */
export interface SecretUse {
  where: string;
  keys: string[] | null;
  /** Where in a manifest the reference is written. */
  at: PathSegment[];
}

/** The uses of secret `name` in a service spec. */
export function usesOf(spec: ServiceSpec, name: string): SecretUse[] {
  const uses: SecretUse[] = [];
  for (const [env, ref] of Object.entries(spec.secretEnv ?? {})) {
    if (ref.secret === name) uses.push({ where: `env ${env}`, keys: [ref.key], at: ['spec', 'env', env] });
  }
  (spec.secrets ?? []).forEach((v, i) => {
    if (v.name === name) uses.push({ where: `volume ${v.mountPath}`, keys: v.items ? v.items.map((it) => it.key) : null, at: ['spec', 'secrets', i] });
  });
  return uses;
}

/** Every secret a spec names. */
export function secretsOf(spec: ServiceSpec): string[] {
  return [...new Set([...Object.values(spec.secretEnv ?? {}).map((r) => r.secret), ...(spec.secrets ?? []).map((v) => v.name)])];
}

/** Stored services that use `name`, in name order, with how. */
export function usersOf(data: Readonly<StateData>, name: string): Array<{ service: string; uses: SecretUse[] }> {
  return Object.values(data.services)
    .map((s) => ({ service: s.name, uses: usesOf(s.revision.spec, name) }))
    .filter((u) => u.uses.length > 0)
    .sort((a, b) => (a.service < b.service ? -1 : 1));
}

/** `web (env TOKEN), api (volume /run/secrets/x)`. */
export function describeUsers(users: ReturnType<typeof usersOf>): string {
  return users.map((u) => `${u.service} (${u.uses.map((x) => x.where).join(', ')})`).join(', ');
}

/** Keys a set of uses needs that `keys` lacks. */
export function missingKeys(uses: readonly SecretUse[], keys: readonly string[]): string[] {
  const have = new Set(keys);
  return [...new Set(uses.flatMap((u) => u.keys ?? []).filter((k) => !have.has(k)))];
}

/**
 * The problems of a manifest's secret references against the secrets as they
 * will stand (name → keys): each at the reference, with what to do.
 */
export function checkSecretRefs(
  spec: ServiceSpec, locate: (segments: PathSegment[]) => ManifestProblem['position'], secrets: ReadonlyMap<string, readonly string[]>,
  /** Secrets that exist but that this manifest's source may not use, with whose they are. */
  refused: ReadonlyMap<string, { owner: SourceId; usableBy: readonly string[]; source: SourceId }> = new Map(),
): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (segments: PathSegment[], message: string) => problems.push({ position: locate(segments), path: formatSegments(segments), message });
  const setHint = (name: string, keys: readonly string[]) => `carte secret set ${name} ${keys.map((k) => `--from-literal ${k}=...`).join(' ')}`;
  for (const name of secretsOf(spec)) {
    const uses = usesOf(spec, name);
    const keys = secrets.get(name);
    const denied = refused.get(name);
    if (!keys && denied) {
      for (const u of uses) {
        report([...u.at, u.at[1] === 'env' ? 'secret' : 'name'], `secret "${name}" is not usable by source ${denied.source}: it belongs to ${denied.owner} and is usable by ${denied.usableBy.join(', ')} (the administrator can allow it: carte secret grant ${name} ${[...denied.usableBy, denied.source].map((g) => `--usable-by '${g}'`).join(' ')})`);
      }
      continue;
    }
    if (!keys) {
      const needed = [...new Set(uses.flatMap((u) => u.keys ?? []))];
      for (const u of uses) {
        report([...u.at, u.at[1] === 'env' ? 'secret' : 'name'], `secret "${name}" does not exist (store it first: ${setHint(name, needed.length ? needed : ['KEY'])})`);
      }
      continue;
    }
    for (const u of uses) {
      (u.keys ?? []).forEach((k, i) => {
        if (keys.includes(k)) return;
        const at = u.at[1] === 'env' ? [...u.at, 'key'] : [...u.at, 'items', i, 'key'];
        report(at, `secret "${name}" has no key "${k}" (its keys: ${keys.join(', ')}; set it again with every key: ${setHint(name, [...keys, k])})`);
      });
    }
  }
  return problems;
}

function formatSegments(segments: readonly PathSegment[]): string {
  return segments.reduce<string>((acc, s) => (typeof s === 'number' ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}

export interface SecretVersion {
  name: string;
  keys: string[];
  digest: string;
  source: SourceId;
  origin: string | null;
  commit: string | null;
  /** Keys whose value is new, added or gone (for the event); null when not known. */
  changedKeys: string[] | null;
  /** Who may use it (`carte secret set --usable-by`); undefined keeps what was stored. */
  usableBy?: string[];
}

/** The sources whose manifests may use `s`: its grant, else its own source. */
export function usableByOf(s: Pick<StoredSecret, 'source' | 'usableBy'>): string[] {
  return s.usableBy?.length ? s.usableBy : [s.source];
}

/** Whether manifests of `source` may use secret `s`. */
export function usableBy(s: Pick<StoredSecret, 'source' | 'usableBy'>, source: SourceId): boolean {
  return usableByOf(s).some((p) => matchesSource(p, source));
}

/** The template hash a service rolls to when secret `name` becomes version `digest`. */
export function rolledTemplateHash(templateHash: string, name: string, digest: string): string {
  return createHash('sha256').update(`${templateHash}:secret:${name}:${digest}`).digest('hex').slice(0, 16);
}

/**
 * Records a secret's new version (or a new secret) and, when a version
 * replaced another, rolls every service that uses it, except those in
 * `skip` (their instances are replaced anyway: a new template in the same
 * change). Returns the services rolled.
 */
export function commitSecret(data: StateData, v: SecretVersion, now: Date, skip: ReadonlySet<string> = new Set()): string[] {
  const secrets = (data.secrets ??= {});
  const before = secrets[v.name];
  const at = now.toISOString();
  const stored: StoredSecret = {
    name: v.name, keys: [...v.keys].sort(), digest: v.digest, source: v.source, origin: v.origin, commit: v.commit,
    ...((v.usableBy ?? before?.usableBy) ? { usableBy: v.usableBy ?? before!.usableBy } : {}),
    createdAt: before?.createdAt ?? at, updatedAt: at,
  };
  secrets[v.name] = stored;
  const object = `secret/${v.name}`;
  const from = v.origin ? ` (${v.origin}${v.commit ? ` at ${v.commit.slice(0, 12)}` : ''})` : '';
  if (!before) {
    recordEvent(data, now, { type: 'Normal', object, reason: 'Created', message: `created by ${v.source}${from} with keys ${stored.keys.join(', ')}` });
    return [];
  }
  if (before.digest === v.digest) return [];
  const rolled: string[] = [];
  for (const { service } of usersOf(data, v.name)) {
    if (skip.has(service)) continue;
    const s = data.services[service]!;
    const r = s.revision;
    pushRevision(s, { ...r, revision: r.revision + 1, templateHash: rolledTemplateHash(r.templateHash, v.name, v.digest), cause: { kind: 'secret', name: v.name }, at });
    recordEvent(data, now, { type: 'Normal', object: `service/${service}`, reason: 'SecretChanged', message: `revision ${r.revision + 1}: secret ${v.name} changed; every instance is replaced, one by one` });
    rolled.push(service);
  }
  const what = v.changedKeys ? `keys changed: ${v.changedKeys.join(', ') || 'none'}` : 'new value';
  recordEvent(data, now, {
    type: 'Normal', object, reason: 'Updated',
    message: `updated by ${v.source}${from} (${what})${rolled.length ? `; rolling ${rolled.map((n) => `service/${n}`).join(', ')}` : ''}`,
  });
  return rolled;
}

/** Every `name.digest` the state names: the version files to keep. */
export function versionsNamed(data: Readonly<StateData>): Set<string> {
  return new Set(Object.values(data.secrets ?? {}).map((s) => `${s.name}.${s.digest}`));
}
