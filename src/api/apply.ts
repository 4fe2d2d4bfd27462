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
  recordEvent, REVISION_LIMIT, serviceObject, syncServiceIndexes, type Revision, type SourceId, type StateData, type StoredService,
} from '../store/state.js';
import type { Store } from '../store/store.js';
import { diffServices } from './diff.js';
import { admit, type AdmissionContext } from '../policy/admit.js';
import { DEFAULT_POLICY } from '../policy/policy.js';
import { DEFAULT_HOME } from '../store/store.js';

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
  /**
   * Per service, a build context to store in place of the admitted one: a Git
   * source maps the context in the new commit's tree (`from`) to the same
   * folder in the older tree the stored revision builds from (`to`) when Git
   * says their files are the same, so a commit that leaves a build alone does
   * not rebuild and roll it out.
   */
  reuseContexts?: ReadonlyMap<string, ReusedContext>;
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

export interface ApplyPlan {
  changes: ApplyChange[];
  problems: ManifestProblem[];
}

/** What applying `req` to `data` would do, and why it cannot, if it cannot. Pure. */
export function planApply(data: StateData, req: ApplyRequest): ApplyPlan {
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

  // Check the set as it would stand afterwards: these manifests plus what stays stored.
  const remaining = Object.values(data.services).filter((s) => !incoming.has(s.name) && !pruned.has(s.name));
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
  return { changes, problems };
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

/** Appends a revision to a stored service (bounded history) and makes it current. */
export function pushRevision(service: StoredService, revision: Revision): void {
  service.history.push(revision);
  if (service.history.length > REVISION_LIMIT) service.history.splice(0, service.history.length - REVISION_LIMIT);
  service.revision = revision;
  service.updatedAt = revision.at;
}

/** Short list of what changed, for event messages: `spec.image, spec.replicas`. */
export function changedFields(before: ServiceObject | null, after: ServiceObject | null, max = 4): string {
  const paths = diffServices(before, after).map((c) => c.path);
  return paths.length > max ? `${paths.slice(0, max).join(', ')} and ${paths.length - max} more` : paths.join(', ');
}

/** Writes a plan made by planApply into `data`. */
export function commitApply(data: StateData, req: ApplyRequest, plan: ApplyPlan, now: Date): void {
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
  syncServiceIndexes(data);
  data.sources[req.source] = { id: req.source, lastSync: now.toISOString(), commit: req.commit ?? null, lastError: null };
}

/**
 * Plans and (unless dryRun) commits under the store lock. Throws a
 * ManifestError listing every problem, in which case nothing was written.
 */
export async function applyServices(store: Store, req: ApplyRequest, opts: { dryRun?: boolean; now?: () => Date } = {}): Promise<ApplyChange[]> {
  const now = opts.now ?? (() => new Date());
  if (opts.dryRun) {
    const plan = planApply(await store.read(), req);
    if (plan.problems.length) throw new ManifestError(plan.problems, 'nothing would be applied');
    return plan.changes;
  }
  return store.update((data) => {
    const plan = planApply(data, req);
    if (plan.problems.length) throw new ManifestError(plan.problems);
    commitApply(data, req, plan, now());
    return plan.changes;
  });
}
