import type { PullPolicy } from './image-reference.js';
// The canonical form of a Service: defaults filled in, units parsed to plain
// numbers (millicores, bytes, milliseconds, percent). This is what the store
// keeps, what is hashed, and what the reconciler and driver read.
import type { IntOrPercent } from './units.js';

export type Protocol = 'tcp' | 'udp';
export type Balance = 'round-robin' | 'least-connections';
export type RestartPolicy = 'always' | 'on-failure' | 'never';

export interface PublishSpec {
  port: number;
  /** Bind address; null means the daemon's default (all interfaces unless configured). */
  address: string | null;
  /** HTTP mode: route by Host header so several services share one port. */
  host: string | null;
}

export interface PortSpec {
  name: string;
  port: number;
  protocol: Protocol;
  publish: PublishSpec | null;
  balance: Balance;
}

export type VolumeSpec =
  | { kind: 'named'; name: string; mountPath: string; readOnly: boolean }
  | { kind: 'host'; hostPath: string; mountPath: string; readOnly: boolean };

/** One key of a stored secret (desired state holds the reference, never the value). */
export interface SecretKeyRef {
  secret: string;
  key: string;
}

/** A secret mounted as read-only files on a tmpfs of its own. */
export interface SecretVolumeSpec {
  /** The secret's name. */
  name: string;
  mountPath: string;
  /** Which keys become which files (relative paths); null: every key, as a file named after it. */
  items: Array<{ key: string; path: string }> | null;
  /** File mode, e.g. 0o400 (the default). */
  mode: number;
}

export type HealthCheck =
  | { kind: 'http'; path: string; port: number }
  | { kind: 'tcp'; port: number }
  | { kind: 'exec'; command: string[] };

export interface HealthSpec {
  check: HealthCheck;
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  startPeriodMs: number;
}

export interface ScheduleSpec {
  cron: string;
  durationMs: number;
  min: number | null;
  max: number | null;
}

export interface AutoscaleSpec {
  min: number;
  max: number;
  cpuPercent: number | null;
  memoryPercent: number | null;
  scaleDownDelayMs: number;
  idleToZeroMs: number | null;
  schedule: ScheduleSpec[];
}

export interface BuildSpec {
  /** Absolute path, resolved against the manifest file's folder. */
  context: string;
  cartefile: string;
  args: Record<string, string>;
  /** RUN steps join carte's bridge; present only when true, so specs without it keep their hashes. */
  network?: true;
}

export interface ServiceSpec {
  image: string | null;
  /** As written in the manifest; absent: the default (IfNotPresent, Always for :latest; effectivePullPolicy). Absent too in specs stored before it, so their hashes are unchanged. */
  pullPolicy?: PullPolicy;
  build: BuildSpec | null;
  command: string[] | null;
  args: string[] | null;
  env: Record<string, string>;
  /**
   * Environment variables whose values come from secrets, resolved when an
   * instance is created. Absent when there are none (and in specs stored by
   * a carte from before secrets), so their hashes are unchanged.
   */
  secretEnv?: Record<string, SecretKeyRef>;
  workingDir: string | null;
  user: string | null;
  replicas: number;
  resources: { cpuMillis: number | null; memoryBytes: number | null; pids: number | null };
  ports: PortSpec[];
  volumes: VolumeSpec[];
  /** Secrets mounted as files; absent when there are none (as secretEnv). */
  secrets?: SecretVolumeSpec[];
  health: HealthSpec | null;
  restart: RestartPolicy;
  update: { maxSurge: IntOrPercent; maxUnavailable: IntOrPercent; progressDeadlineMs: number };
  autoscale: AutoscaleSpec | null;
  dependsOn: string[];
  /**
   * The services whose instances may connect to this one ("*": every
   * service); absent when the manifest does not say (then the server
   * policy's network.allowFromDefault decides, when enforced), so specs
   * stored before it keep their hashes.
   */
  allowFrom?: string[];
  stopGracePeriodMs: number;
  // The confinement fields are absent in specs stored by a carte from before
  // them (read: false, none, false); canonicalize always writes them.
  /** The root filesystem is mounted read-only. */
  readOnlyRootfs?: boolean;
  /** Capability names, upper case without CAP_; `drop` may hold ALL. */
  capabilities?: { add: string[]; drop: string[] };
  /** Run in a user namespace; null means not said, and admission writes the server policy's default. */
  userns?: boolean | null;
}

export interface ServiceObject {
  name: string;
  labels: Record<string, string>;
  spec: ServiceSpec;
}

/** Defaults, in one place so docs/manifests.md and the code agree. */
export const DEFAULTS = {
  replicas: 1,
  restart: 'always' as RestartPolicy,
  maxSurge: { count: 1 } as IntOrPercent,
  maxUnavailable: { count: 0 } as IntOrPercent,
  progressDeadlineMs: 120_000,
  healthIntervalMs: 10_000,
  healthTimeoutMs: 1_000,
  healthFailureThreshold: 3,
  healthStartPeriodMs: 0,
  autoscaleMin: 1,
  scaleDownDelayMs: 60_000,
  scheduleDurationMs: 3_600_000,
  stopGracePeriodMs: 10_000,
  cartefile: 'Cartefile',
  readOnlyRootfs: false,
  secretFileMode: 0o400,
  balance: 'round-robin' as Balance,
  protocol: 'tcp' as Protocol,
};

/**
 * Upper (and a few lower) bounds on what a manifest may ask for, so that no
 * user value makes the control plane wait for days, spin, or overflow a timer
 * (setTimeout fires at once above 2^31-1 ms, about 24.8 days). checks.ts
 * enforces them, docs/manifests.md lists them, and code that turns the
 * canonical values into timers may rely on them.
 */
export const LIMITS = {
  /** Lists and mappings nested deeper than this are refused before parsing (a Service needs 5). */
  nestingDepth: 64,
  /** replicas, autoscale min/max and schedule window min/max. */
  replicasMax: 1000,
  healthIntervalMinMs: 100,
  healthIntervalMaxMs: 3_600_000,
  /** health.timeout must also be above 0 and at most the interval. */
  healthStartPeriodMaxMs: 3_600_000,
  stopGracePeriodMaxMs: 3_600_000,
  /** A rollout needs at least this long to make one instance ready; less fails every rollout at once. */
  progressDeadlineMinMs: 1_000,
  progressDeadlineMaxMs: 86_400_000,
  scaleDownDelayMaxMs: 86_400_000,
  idleToZeroMaxMs: 86_400_000,
  /** The scaler looks back over every minute of a window on each decision. */
  scheduleDurationMaxMs: 86_400_000,
  /** Windows are matched minute by minute: a shorter one may never be open. */
  scheduleDurationMinMs: 60_000,
} as const;
