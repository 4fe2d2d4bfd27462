// The shape of the state file: everything carte must not forget. Desired
// services with their revision history and owning source, events, sources'
// sync status, and room for instance and image records (filled by the driver
// and reconciler issues).
import type { Alert } from '../alerts/types.js';
import type { WaitCause } from '../model/wait.js';
import type { ServiceObject, ServiceSpec } from '../schema/types.js';

export const STATE_VERSION = 1;
/** Revisions kept per service, oldest dropped first (like a Deployment's revisionHistoryLimit). */
export const REVISION_LIMIT = 20;
/** Events kept in all, oldest dropped first. */
export const EVENT_LIMIT = 1000;

export type SourceId = string; // 'cli', 'folder:/abs/path', 'git:url#branch:path'

export interface Revision {
  revision: number;
  hash: string;
  templateHash: string;
  labels: Record<string, string>;
  spec: ServiceSpec;
  source: SourceId;
  /** file:line:column of the manifest it came from, when it came from one. */
  origin: string | null;
  /** Git commit the manifests were read at, when the source is Git. */
  commit: string | null;
  /** Why this revision exists: written by apply, or copied back by rollback. */
  cause: { kind: 'apply' } | { kind: 'rollback'; to: number } | { kind: 'restart' } | { kind: 'scale'; from: number }
    /** A secret the service uses changed value: same spec, new template (its instances are replaced). */
    | { kind: 'secret'; name: string };
  at: string;
}

export interface StoredService {
  name: string;
  source: SourceId;
  /** `carte stop`: held at zero instances until `carte start`. */
  suspended?: boolean;
  createdAt: string;
  updatedAt: string;
  /**
   * The replica count the autoscaler (or a wake from zero) chose; it wins over
   * spec.replicas while spec.autoscale is set, and survives re-applies.
   */
  autoscaled?: { replicas: number; at: string; reason: string };
  /** The current revision; `history` ends with it. */
  revision: Revision;
  history: Revision[];
}

/**
 * A stored secret as the state file knows it: never a value. The values are
 * in CARTE_HOME/secrets/<name>.<digest>.age, encrypted to the server's key
 * (src/secrets/vault.ts).
 */
export interface StoredSecret {
  name: string;
  keys: string[];
  /** sha256 (16 hex) of the current encrypted file: names the version, says nothing of the values. */
  digest: string;
  /** `cli` for `carte secret set` (and SealedSecrets given to `carte apply`), else the folder or Git source of its SealedSecret. */
  source: SourceId;
  /** file:line:column of the SealedSecret it came from; null for `carte secret set`. */
  origin: string | null;
  commit: string | null;
  /**
   * Which sources' manifests may use it: source ids or patterns (`*` any run
   * of characters, as in the policy's `match`). Absent: its own source only,
   * so a class's repository cannot mount a secret the administrator set.
   */
  usableBy?: string[];
  createdAt: string;
  updatedAt: string;
}

export interface CarteEvent {
  seq: number;
  at: string;
  type: 'Normal' | 'Warning';
  /** `service/login`, `source/cli`, ... */
  object: string;
  reason: string;
  message: string;
}

export interface SourceStatus {
  id: SourceId;
  lastSync: string | null;
  commit: string | null;
  lastError: string | null;
}

export interface StateData {
  version: number;
  services: Record<string, StoredService>;
  events: CarteEvent[];
  nextEventSeq: number;
  sources: Record<SourceId, SourceStatus>;
  instances: Record<string, unknown>;
  images: Record<string, unknown>;
  /** Secrets by name: keys and version only (absent in files of a carte from before secrets). */
  secrets?: Record<string, StoredSecret>;
  /** Rollouts in progress, per service (written by the reconciler). */
  rollouts?: Record<string, { templateHash: string; startedAt: number }>;
  /**
   * Why a service cannot progress now, per service: the plan's typed wait
   * causes, written by the reconciler (a sentence from an older carte).
   */
  waiting?: Record<string, WaitCause | string>;
  /**
   * Each service's slot in the service address range (its stable address for
   * discovery: the driver turns the index into an IP on the instance network).
   */
  serviceIndex?: Record<string, number>;
  /** Why the gateway cannot serve a service's ports, per service (written by the daemon). */
  portErrors?: Record<string, string>;
  /**
   * The store's write counter: every write of state.json is generation N+1,
   * and the file it replaces is kept as generations/state.N.json (see store.ts).
   * Absent in files written by a carte from before generations.
   */
  generation?: number;
  /** When this generation was written (ISO time). */
  writtenAt?: string;
  /** The last time a damaged state.json was replaced by a kept generation. */
  recovery?: StateRecovery;
  /**
   * Alerts firing now and recently resolved, bounded (written by the daemon's
   * alert engine on transitions only, src/alerts/engine.ts): a restarted
   * daemon takes the firing ones over instead of firing them again.
   */
  alerts?: { active: Alert[]; resolved: Alert[] };
}

export interface StateRecovery {
  /** When the damage was found and the generation restored. */
  at: string;
  /** The generation restored. */
  generation: number;
  /** What was wrong with state.json ("not valid JSON (…)"). */
  reason: string;
  /** Where the damaged file is kept. */
  /** Where the damaged file was set aside; null when it was missing. */
  damagedFile: string | null;
}

export function emptyState(): StateData {
  return { version: STATE_VERSION, services: {}, events: [], nextEventSeq: 1, sources: {}, instances: {}, images: {} };
}

export function serviceObject(s: StoredService): ServiceObject {
  return { name: s.name, labels: s.revision.labels, spec: s.revision.spec };
}

/** Appends a revision to a stored service (bounded history) and makes it current. */
export function pushRevision(service: StoredService, revision: Revision): void {
  service.history.push(revision);
  if (service.history.length > REVISION_LIMIT) service.history.splice(0, service.history.length - REVISION_LIMIT);
  service.revision = revision;
  service.updatedAt = revision.at;
}

export function recordEvent(data: StateData, at: Date, ev: Omit<CarteEvent, 'seq' | 'at'>): CarteEvent {
  const event: CarteEvent = { seq: data.nextEventSeq++, at: at.toISOString(), ...ev };
  data.events.push(event);
  if (data.events.length > EVENT_LIMIT) data.events.splice(0, data.events.length - EVENT_LIMIT);
  return event;
}

/** The replicas the reconciler aims for: 0 when stopped, else scaledReplicas. */
export function effectiveReplicas(s: StoredService): number {
  return s.suspended ? 0 : scaledReplicas(s);
}

/** The autoscaler's count (clamped to the current bounds) when autoscaled, else the manifest's. */
export function scaledReplicas(s: StoredService): number {
  const a = s.revision.spec.autoscale;
  if (a && s.autoscaled) return Math.min(a.max, Math.max(a.min, s.autoscaled.replicas));
  return s.revision.spec.replicas;
}

/**
 * Gives every stored service a service-address slot (lowest free) and frees
 * the slots of services that are gone. Slots never move while a service
 * exists, so its address stays stable for its whole life.
 */
export function syncServiceIndexes(data: StateData): void {
  const index = (data.serviceIndex ??= {});
  for (const name of Object.keys(index)) if (!data.services[name]) delete index[name];
  const used = new Set(Object.values(index));
  let next = 1;
  for (const name of Object.keys(data.services).sort()) {
    if (index[name] !== undefined) continue;
    while (used.has(next)) next++;
    index[name] = next;
    used.add(next);
  }
}
