// Applying a set of manifests from one source to desired state. Planning is
// pure (state + manifests → changes and problems); committing writes the
// changes, revisions and events. Every source (the CLI, a watched folder, a
// Git repository) goes through here, so ownership and prune behave alike.
import { ManifestError, type ManifestProblem } from '../errors.js';
import { specHash, templateHash } from '../schema/canonical.js';
import { toSetMember, type LoadedService } from '../schema/load.js';
import { checkSet, type SetMember } from '../schema/set-checks.js';
import type { ServiceObject } from '../schema/types.js';
import {
  pushRevision, recordEvent, serviceObject, syncServiceIndexes, type Revision, type SourceId, type StateData,
} from '../store/state.js';
import type { Store } from '../store/store.js';
import { diffServices } from './diff.js';
import { admit, type AdmissionContext } from '../policy/admit.js';
import { DEFAULT_POLICY } from '../policy/policy.js';
import { DEFAULT_HOME } from '../store/store.js';
import type { OpenedSecret } from '../secrets/sealed.js';
import { sameValues, type SecretValues, type SecretVault } from '../secrets/vault.js';
import { formatPath, type PathSegment } from '../schema/locate.js';
import { readVolumeOwners, volumesDirOf, type VolumeOwners } from '../util/volume-owners.js';
import { checkSecretRefs, commitSecret, missingKeys, secretsOf, usableBy, usableByOf, usesOf, versionsNamed } from './secret-state.js';

export interface ApplyRequest {
  services: readonly LoadedService[];
  source: SourceId;
  /** Delete services this source owns that are not in `services`. */
  prune: boolean;
  commit?: string | null;
  /**
   * The server policy and the machine facts admission needs. Every source
   * passes the server's; absent (tests), the built-in policy with
   * CARTE_HOME at its default place and no symlinks anywhere.
   */
  admission?: AdmissionContext;
  /** The set's SealedSecrets, opened with the server's key (src/secrets/sealed.ts). */
  secrets?: readonly OpenedSecret[];
  /**
   * Per service, a build context to store in place of the admitted one: a Git
   * source maps the context in the new commit's tree (`from`) to the same
   * folder in the older tree the stored revision builds from (`to`) when Git
   * says their files are the same, so a commit that leaves a build alone does
   * not rebuild and roll it out.
   */
  reuseContexts?: ReadonlyMap<string, ReusedContext>;
  /**
   * Who owns each named volume (CARTE_HOME/volumes/.owners.json, see
   * src/util/volume-owners.ts). applyManifests reads the store's home's when absent; for
   * planApply, absent means no volume has an owner on record yet.
   */
  volumeOwners?: Readonly<VolumeOwners>;
}

export interface ReusedContext {
  from: string;
  to: string;
}

const BUILT_IN_ADMISSION: AdmissionContext = { policy: DEFAULT_POLICY, home: DEFAULT_HOME, realpath: () => null };

export type ApplyAction = 'created' | 'configured' | 'unchanged' | 'pruned';

export interface ApplyChange {
  name: string;
  action: ApplyAction;
  before: ServiceObject | null;
  after: ServiceObject | null;
  /** The manifest the change comes from (null for a prune). */
  loaded: LoadedService | null;
}

/** A SealedSecret of the set, compared with what is stored. */
export interface PlannedSecret {
  name: string;
  keys: string[];
  values: SecretValues;
  /** New, or its values differ from the stored version's. */
  changed: boolean;
  /** Keys whose value is new, added or gone; null when the stored version could not be read. */
  changedKeys: string[] | null;
  origin: string;
  locate: OpenedSecret['locate'];
  /** The version written, once written (applyManifests fills it in before the commit). */
  digest?: string;
}

export type SecretAction = 'created' | 'updated' | 'unchanged' | 'pruned';

export interface SecretChange {
  name: string;
  action: SecretAction;
  /** Null for a prune. */
  planned: PlannedSecret | null;
}

export interface ApplyPlan {
  changes: ApplyChange[];
  secretChanges: SecretChange[];
  problems: ManifestProblem[];
}

/** What applying `req` to `data` would do, and why it cannot, if it cannot. Pure: `secrets` are the set's SealedSecrets, already compared (planSecrets). */
export function planApply(data: StateData, req: ApplyRequest, secrets: readonly PlannedSecret[] = []): ApplyPlan {
  const changes: ApplyChange[] = [];
  const incoming = new Set(req.services.map((s) => s.object.name));
  const pruned = new Set<string>();
  if (req.prune) {
    for (const stored of Object.values(data.services)) {
      if (stored.source === req.source && !incoming.has(stored.name)) pruned.add(stored.name);
    }
  }

  // Admission first: the policy's defaults are part of what is compared and stored.
  const admitted = admit(req.services, { ...(req.admission ?? BUILT_IN_ADMISSION), source: req.source, stored: Object.values(data.services), pruned });
  const problems: ManifestProblem[] = [...admitted.problems];
  const services = admitted.services.map((s) => reuseContext(s, req.reuseContexts));

  for (const loaded of services) {
    const stored = data.services[loaded.object.name];
    if (stored && stored.source !== req.source) {
      problems.push({
        position: loaded.locate(['metadata', 'name']),
        path: 'metadata.name',
        message: `service "${stored.name}" belongs to source ${stored.source}; change it there, or delete it first with "carte delete ${stored.name}"`,
      });
      continue;
    }
    const before = stored ? serviceObject(stored) : null;
    const action: ApplyAction = !stored ? 'created' : stored.revision.hash === specHash(loaded.object) ? 'unchanged' : 'configured';
    changes.push({ name: loaded.object.name, action, before, after: loaded.object, loaded });
  }

  for (const name of pruned) {
    const stored = data.services[name]!;
    changes.push({ name, action: 'pruned', before: serviceObject(stored), after: null, loaded: null });
  }

  problems.push(...checkVolumeOwners(data, req, services));

  const secretChanges = planSecretChanges(data, req, secrets, problems);
  // Every secret reference, against the secrets as they will stand.
  // Only those this source may use: a class's repository must not mount a secret the administrator set for another.
  const available = new Map<string, readonly string[]>();
  const refused = new Map<string, { owner: SourceId; usableBy: readonly string[]; source: SourceId }>();
  for (const s of Object.values(data.secrets ?? {})) {
    if (usableBy(s, req.source)) available.set(s.name, s.keys);
    else refused.set(s.name, { owner: s.source, usableBy: usableByOf(s), source: req.source });
  }
  for (const c of secretChanges) {
    if (c.action === 'pruned') available.delete(c.name);
    else {
      available.set(c.name, c.planned!.keys);
      refused.delete(c.name);
    }
  }
  for (const loaded of services) problems.push(...checkSecretRefs(loaded.object.spec, loaded.locate, available, refused));

  // Check the set as it would stand afterwards: these manifests plus what stays stored.
  const remaining = Object.values(data.services).filter((s) => !incoming.has(s.name) && !pruned.has(s.name));
  for (const s of remaining) {
    for (const name of secretsOf(s.revision.spec)) {
      const change = secretChanges.find((c) => c.name === name);
      if (!change) continue;
      if (change.action === 'pruned') {
        problems.push({ position: null, path: '', message: `service "${s.name}" (source ${s.source}) uses secret "${name}", which --prune would delete` });
        continue;
      }
      for (const key of missingKeys(usesOf(s.revision.spec, name), change.planned!.keys)) {
        problems.push({ position: change.planned!.locate(['spec', 'data']), path: 'spec.data', message: `service "${s.name}" (source ${s.source}) uses key "${key}" of secret "${name}", which this SealedSecret leaves out` });
      }
    }
  }
  const members: SetMember[] = [
    ...services.map(toSetMember),
    ...remaining.map((s) => ({ name: s.name, spec: s.revision.spec, locate: null, describe: `stored, from source ${s.source}` })),
  ];
  problems.push(...checkSet(members, { dependenciesKnown: true }));
  for (const s of remaining) {
    for (const dep of s.revision.spec.dependsOn) {
      if (pruned.has(dep)) {
        problems.push({ position: null, path: '', message: `service "${s.name}" (source ${s.source}) depends on "${dep}", which --prune would delete` });
      }
    }
  }
  return { changes, secretChanges, problems };
}

/**
 * A named volume belongs to the source that first used it: the registry's
 * owner, else another source's stored service that uses it (its instances may
 * not have made it yet). Another source naming it is refused, so a manifest
 * from a watched folder or a Git repository cannot read or write the data of
 * the administrator's services, or of another repository's.
 */
function checkVolumeOwners(data: StateData, req: ApplyRequest, services: readonly LoadedService[]): ManifestProblem[] {
  const owners = new Map<string, SourceId>();
  for (const s of Object.values(data.services)) {
    if (s.source === req.source) continue;
    for (const v of s.revision.spec.volumes) if (v.kind === 'named' && !owners.has(v.name)) owners.set(v.name, s.source);
  }
  // The registry has the last word: it outlives the services.
  for (const [name, owner] of Object.entries(req.volumeOwners ?? {})) owners.set(name, owner);
  const problems: ManifestProblem[] = [];
  for (const loaded of services) {
    for (const [i, v] of loaded.object.spec.volumes.entries()) {
      if (v.kind !== 'named') continue;
      const owner = owners.get(v.name);
      if (owner === undefined || owner === req.source) continue;
      const at: PathSegment[] = ['spec', 'volumes', i, 'name'];
      problems.push({
        position: loaded.locate(at), path: formatPath(at),
        message: `volume "${v.name}" belongs to source ${owner}; use another name (volumes are private to the source that made them)`,
      });
    }
  }
  return problems;
}

/** Created, updated, unchanged or pruned, per secret; a secret another source owns is a problem. */
function planSecretChanges(data: StateData, req: ApplyRequest, secrets: readonly PlannedSecret[], problems: ManifestProblem[]): SecretChange[] {
  const changes: SecretChange[] = [];
  for (const p of secrets) {
    const stored = data.secrets?.[p.name];
    if (stored && stored.source !== req.source) {
      problems.push({
        position: p.locate(['metadata', 'name']), path: 'metadata.name',
        message: `secret "${p.name}" belongs to source ${stored.source}; change it there, or remove it first with "carte secret rm ${p.name}"`,
      });
      continue;
    }
    changes.push({ name: p.name, action: !stored ? 'created' : p.changed ? 'updated' : 'unchanged', planned: p });
  }
  if (req.prune) {
    const incoming = new Set(secrets.map((p) => p.name));
    // Only secrets that came from a SealedSecret of this source: `carte secret set` ones are no manifest's.
    for (const s of Object.values(data.secrets ?? {})) {
      if (s.source === req.source && s.origin !== null && !incoming.has(s.name)) changes.push({ name: s.name, action: 'pruned', planned: null });
    }
  }
  return changes;
}

/**
 * Compares the set's opened SealedSecrets with the stored versions (which
 * it reads, so under the same lock as the commit): unchanged values write
 * nothing and roll nothing.
 */
export async function planSecrets(data: StateData, opened: readonly OpenedSecret[], vault: SecretVault | undefined): Promise<PlannedSecret[]> {
  if (opened.length && !vault) throw new Error('internal: SealedSecrets were opened but no secret vault was given to apply them');
  const planned: PlannedSecret[] = [];
  for (const o of opened) {
    const stored = data.secrets?.[o.name];
    const old = stored ? await vault!.read(o.name, stored.digest).catch(() => null) : null;
    planned.push({
      name: o.name, keys: Object.keys(o.values).sort(), values: o.values, origin: o.origin, locate: o.locate,
      changed: !old || !sameValues(old, o.values),
      changedKeys: old ? changedKeysOf(old, o.values) : null,
    });
  }
  return planned;
}

/** Keys added, removed or with another value. */
export function changedKeysOf(a: SecretValues, b: SecretValues): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !a[k] || !b[k] || !a[k]!.equals(b[k]!)).sort();
}

/** `loaded` with its build context swapped for the equal one `reuse` names for it, if any. */
function reuseContext(loaded: LoadedService, reuse: ReadonlyMap<string, ReusedContext> | undefined): LoadedService {
  const build = loaded.object.spec.build;
  const same = reuse?.get(loaded.object.name);
  if (!build || !same || build.context !== same.from) return loaded;
  return { ...loaded, object: { ...loaded.object, spec: { ...loaded.object.spec, build: { ...build, context: same.to } } } };
}

function newRevision(number: number, obj: ServiceObject, req: { source: SourceId; commit?: string | null }, origin: string | null, cause: Revision['cause'], at: Date): Revision {
  return {
    revision: number,
    hash: specHash(obj),
    templateHash: templateHash(obj.spec),
    labels: obj.labels,
    spec: obj.spec,
    source: req.source,
    origin,
    commit: req.commit ?? null,
    cause,
    at: at.toISOString(),
  };
}

export { pushRevision };

/** Short list of what changed, for event messages: `spec.image, spec.replicas`. */
export function changedFields(before: ServiceObject | null, after: ServiceObject | null, max = 4): string {
  const paths = diffServices(before, after).map((c) => c.path);
  return paths.length > max ? `${paths.slice(0, max).join(', ')} and ${paths.length - max} more` : paths.join(', ');
}

/** Writes a plan made by planApply into `data` (a changed secret's new version must be written already: its digest set). */
export function commitApply(data: StateData, req: ApplyRequest, plan: ApplyPlan, now: Date): void {
  const templates = new Map(Object.values(data.services).map((s) => [s.name, s.revision.templateHash]));
  for (const c of plan.changes) {
    const object = `service/${c.name}`;
    const origin = c.loaded?.origin ?? null;
    const from = origin ? ` (${origin}${req.commit ? ` at ${req.commit.slice(0, 12)}` : ''})` : '';
    switch (c.action) {
      case 'created': {
        const rev = newRevision(1, c.after!, req, origin, { kind: 'apply' }, now);
        data.services[c.name] = { name: c.name, source: req.source, createdAt: rev.at, updatedAt: rev.at, revision: rev, history: [rev] };
        recordEvent(data, now, { type: 'Normal', object, reason: 'Created', message: `created at revision 1 by ${req.source}${from}` });
        break;
      }
      case 'configured': {
        const stored = data.services[c.name]!;
        const number = stored.revision.revision + 1;
        pushRevision(stored, newRevision(number, c.after!, req, origin, { kind: 'apply' }, now));
        recordEvent(data, now, { type: 'Normal', object, reason: 'Configured', message: `revision ${number - 1} → ${number} by ${req.source}${from}: ${changedFields(c.before, c.after)}` });
        break;
      }
      case 'pruned':
        delete data.services[c.name];
        recordEvent(data, now, { type: 'Normal', object, reason: 'Pruned', message: `deleted: no longer in the manifests of ${req.source}` });
        break;
      case 'unchanged':
        break;
    }
  }
  // A secret's new value rolls the services that use it, unless this change replaces their instances anyway.
  const replaced = new Set(Object.values(data.services).filter((s) => templates.get(s.name) !== s.revision.templateHash).map((s) => s.name));
  for (const c of plan.secretChanges) {
    if (c.action === 'created' || c.action === 'updated') {
      const p = c.planned!;
      if (!p.digest) throw new Error(`internal: secret ${c.name} committed before its version was written`);
      commitSecret(data, { name: c.name, keys: p.keys, digest: p.digest, source: req.source, origin: p.origin, commit: req.commit ?? null, changedKeys: p.changedKeys }, now, replaced);
    } else if (c.action === 'pruned') {
      delete data.secrets![c.name];
      recordEvent(data, now, { type: 'Normal', object: `secret/${c.name}`, reason: 'Pruned', message: `deleted: no longer in the manifests of ${req.source}` });
    }
  }
  syncServiceIndexes(data);
  data.sources[req.source] = { id: req.source, lastSync: now.toISOString(), commit: req.commit ?? null, lastError: null };
}

export interface ApplyOptions {
  dryRun?: boolean;
  now?: () => Date;
  /** Where secret values are kept: needed when the request holds SealedSecrets. */
  vault?: SecretVault;
}

/**
 * Plans and (unless dryRun) commits under the store lock. Throws a
 * ManifestError listing every problem, in which case nothing was written.
 */
export async function applyServices(store: Store, req: ApplyRequest, opts: ApplyOptions = {}): Promise<ApplyChange[]> {
  return (await applyManifests(store, req, opts)).changes;
}

/** applyServices, with what happened to the set's secrets too. */
export async function applyManifests(store: Store, req: ApplyRequest, opts: ApplyOptions = {}): Promise<{ changes: ApplyChange[]; secrets: SecretChange[] }> {
  const now = opts.now ?? (() => new Date());
  // Read at each plan (under the store lock when committing): the driver records owners as it makes volumes.
  const owners = async () => req.volumeOwners ?? await readVolumeOwners(volumesDirOf(store.home));
  const plan = async (data: StateData) => planApply(data, { ...req, volumeOwners: await owners() }, await planSecrets(data, req.secrets ?? [], opts.vault));
  if (opts.dryRun) {
    const p = await plan(await store.read());
    if (p.problems.length) throw new ManifestError(p.problems, 'nothing would be applied');
    return { changes: p.changes, secrets: p.secretChanges };
  }
  return store.update(async (data) => {
    const p = await plan(data);
    if (p.problems.length) throw new ManifestError(p.problems);
    const writes = p.secretChanges.filter((c) => c.action === 'created' || c.action === 'updated');
    if (writes.length) {
      const vault = opts.vault!;
      const key = await vault.key();
      // Under the lock: files no state names are leftovers (an old version, a writer killed before its commit).
      await vault.prune(versionsNamed(data));
      for (const c of writes) c.planned!.digest = await vault.write(c.name, c.planned!.values, key);
    }
    commitApply(data, req, p, now());
    return { changes: p.changes, secrets: p.secretChanges };
  });
}
