// What the reconciler, the gateway, the scaler and the status code all speak
// about: services as desired, instances as managed, who serves what. A
// neutral module, so those layers read these types without importing the
// reconciler's loop (and the loop can change without them).
import type { ObservedInstance } from '../drivers/driver.js';
import type { ServiceSpec } from '../schema/types.js';

/** A service as the plan, the gateway and the scaler see it: its current revision and replica count. */
export interface DesiredService {
  name: string;
  spec: ServiceSpec;
  templateHash: string;
  revision: number;
  /** The source that owns it (`cli`, `folder:…`, `git:…`): whose policy section its builds run under. */
  source: string;
  /** `carte stop SERVICE`: held at zero instances until started again. */
  suspended: boolean;
  /** The Git commit its revision was read at (a Git source); its built image is also tagged with it. */
  commit?: string | null;
}

/** Labels carte puts on the instances it manages; they carry what must survive a daemon restart. */
export const LABELS = {
  template: 'carte.template',
  revision: 'carte.revision',
  restarts: 'carte.restarts',
} as const;

/** An instance of a service managed by the reconciler (not, e.g., one made by `carte run`). */
export function isManaged(i: ObservedInstance): boolean {
  return i.labels[LABELS.template] !== undefined;
}

/** Readiness as written to the store for the CLI and `carte describe`. */
export interface InstanceHealthRecord {
  service: string;
  restarts: number;
  ready: boolean;
  unhealthy: boolean;
  lastError: string | null;
  /** The start of the instance's life these results are about (a restarted daemon takes them over only for the same life). */
  startedAt?: string | null;
}

/** Who serves what, after every pass and readiness change: what the gateway routes by. */
export interface Membership {
  services: readonly DesiredService[];
  /** Instances that exist and are not being removed; `ready` ones receive traffic. */
  instances: ReadonlyArray<{ name: string; service: string; ip: string | null; ready: boolean }>;
  /** Service name → its stable address on the instance network (services with ports). */
  addresses: Readonly<Record<string, string>>;
}
