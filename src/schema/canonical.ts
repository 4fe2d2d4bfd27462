// Raw manifest → canonical Service (defaults filled, units parsed), and back;
// plus the stable hashes that tell "changed" from "unchanged".
// Callers pass manifests that already passed the schema and checks.ts, so the
// unit parsers cannot fail here; `must` turns a broken promise into a bug report.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { normalizeCapability } from './capabilities.js';
import { API_VERSION, type ServiceManifest, type PortInput } from './service-schema.js';
import {
  DEFAULTS, type HealthCheck, type PortSpec, type SecretKeyRef, type SecretVolumeSpec, type ServiceObject, type ServiceSpec, type VolumeSpec,
} from './types.js';
import {
  formatCpu, formatDuration, formatIntOrPercent, formatMemory, parseCpu, parseDuration, parseIntOrPercent,
  parseMemory, parsePercent, type IntOrPercent, type Parsed,
} from './units.js';

function must(p: Parsed, what: string): number {
  if (!p.ok) throw new Error(`internal: ${what} passed validation but does not parse: ${p.message}`);
  return p.value;
}
const duration = (v: string | undefined, dflt: number): number => (v === undefined ? dflt : must(parseDuration(v), 'duration'));
const intOrPercent = (v: number | string | undefined, dflt: IntOrPercent): IntOrPercent => {
  if (v === undefined) return dflt;
  const p = parseIntOrPercent(v);
  if (!p.ok) throw new Error(`internal: ${p.message}`);
  return p.value;
};

export function defaultPortName(p: { port: number; protocol?: string }): string {
  return `${p.protocol ?? DEFAULTS.protocol}-${p.port}`;
}

/** Resolves a health-check port given by number or by port name (checks.ts guarantees the name exists). */
export function resolvePortRef(ref: number | string, ports: readonly PortInput[]): number {
  if (typeof ref === 'number') return ref;
  const found = ports.find((p) => (p.name ?? defaultPortName(p)) === ref);
  if (!found) throw new Error(`internal: port name ${ref} passed validation but is unknown`);
  return found.port;
}

/**
 * @param baseDir folder that relative paths in the manifest (build.context) are resolved against:
 *   the manifest file's folder, or the working directory for stdin.
 */
export function canonicalize(m: ServiceManifest, baseDir: string): ServiceObject {
  const s = m.spec;
  const ports: PortSpec[] = (s.ports ?? []).map((p) => ({
    name: p.name ?? defaultPortName(p),
    port: p.port,
    protocol: p.protocol ?? DEFAULTS.protocol,
    publish: p.publish === undefined ? null
      : typeof p.publish === 'number' ? { port: p.publish, address: null, host: null }
        : { port: p.publish.port, address: p.publish.address ?? null, host: p.publish.host?.toLowerCase() ?? null },
    balance: p.balance ?? DEFAULTS.balance,
  }));
  const volumes: VolumeSpec[] = (s.volumes ?? []).map((v) => (v.name !== undefined
    ? { kind: 'named', name: v.name, mountPath: v.mountPath, readOnly: v.readOnly ?? false }
    : { kind: 'host', hostPath: path.resolve(v.hostPath!), mountPath: v.mountPath, readOnly: v.readOnly ?? false }));

  let check: HealthCheck | null = null;
  if (s.health?.http) check = { kind: 'http', path: s.health.http.path, port: resolvePortRef(s.health.http.port, s.ports ?? []) };
  else if (s.health?.tcp) check = { kind: 'tcp', port: resolvePortRef(s.health.tcp.port, s.ports ?? []) };
  else if (s.health?.exec) check = { kind: 'exec', command: s.health.exec.command };

  const a = s.autoscale;
  const autoscale = a === undefined ? null : {
    min: a.min ?? DEFAULTS.autoscaleMin,
    max: a.max,
    cpuPercent: a.cpu === undefined ? null : must(parsePercent(a.cpu), 'autoscale.cpu'),
    memoryPercent: a.memory === undefined ? null : must(parsePercent(a.memory), 'autoscale.memory'),
    scaleDownDelayMs: duration(a.scaleDownDelay, DEFAULTS.scaleDownDelayMs),
    idleToZeroMs: a.idleToZero === undefined ? null : must(parseDuration(a.idleToZero), 'idleToZero'),
    schedule: (a.schedule ?? []).map((w) => ({
      cron: w.cron.trim(),
      durationMs: duration(w.duration, DEFAULTS.scheduleDurationMs),
      min: w.min ?? null,
      max: w.max ?? null,
    })),
  };

  // Plain values and secret references share `env` in a manifest; the canonical form keeps them
  // apart, so every reader of `env` sees strings and only instance creation resolves secrets.
  const env: Record<string, string> = {};
  const secretEnv: Record<string, SecretKeyRef> = {};
  for (const [k, v] of Object.entries(s.env ?? {})) {
    if (typeof v === 'object' && v !== null) secretEnv[k] = { secret: v.secret, key: v.key };
    else env[k] = String(v);
  }
  const secrets: SecretVolumeSpec[] = (s.secrets ?? []).map((v) => ({
    name: v.name,
    mountPath: v.mountPath,
    items: v.items ? v.items.map((i) => ({ key: i.key, path: i.path })) : null,
    mode: v.mode === undefined ? DEFAULTS.secretFileMode : parseInt(v.mode, 8),
  }));

  const healthIntervalMs = duration(s.health?.interval, DEFAULTS.healthIntervalMs);
  const spec: ServiceSpec = {
    image: s.image ?? null,
    ...(s.pullPolicy ? { pullPolicy: s.pullPolicy } : {}),
    build: s.build ? {
      context: path.resolve(baseDir, s.build.context),
      cartefile: s.build.cartefile ?? DEFAULTS.cartefile,
      args: s.build.args ?? {},
      ...(s.build.network ? { network: true as const } : {}),
    } : null,
    command: s.command ?? null,
    args: s.args ?? null,
    env,
    ...(Object.keys(secretEnv).length ? { secretEnv } : {}),
    workingDir: s.workingDir ?? null,
    user: s.user ?? null,
    replicas: s.replicas ?? (autoscale ? autoscale.min : DEFAULTS.replicas),
    resources: {
      cpuMillis: s.resources?.cpu === undefined ? null : must(parseCpu(s.resources.cpu), 'cpu'),
      memoryBytes: s.resources?.memory === undefined ? null : must(parseMemory(s.resources.memory), 'memory'),
      pids: s.resources?.pids ?? null,
    },
    ports,
    volumes,
    ...(secrets.length ? { secrets } : {}),
    health: check === null ? null : {
      check,
      intervalMs: healthIntervalMs,
      // checks.ts keeps a written timeout within the interval; the default must not exceed a short one either.
      timeoutMs: duration(s.health?.timeout, Math.min(DEFAULTS.healthTimeoutMs, healthIntervalMs)),
      failureThreshold: s.health?.failureThreshold ?? DEFAULTS.healthFailureThreshold,
      startPeriodMs: duration(s.health?.startPeriod, DEFAULTS.healthStartPeriodMs),
    },
    restart: s.restart ?? DEFAULTS.restart,
    update: {
      maxSurge: intOrPercent(s.update?.maxSurge, DEFAULTS.maxSurge),
      maxUnavailable: intOrPercent(s.update?.maxUnavailable, DEFAULTS.maxUnavailable),
      progressDeadlineMs: duration(s.update?.progressDeadline, DEFAULTS.progressDeadlineMs),
    },
    autoscale,
    dependsOn: s.dependsOn ?? [],
    ...(s.allowFrom ? { allowFrom: s.allowFrom } : {}),
    stopGracePeriodMs: duration(s.stopGracePeriod, DEFAULTS.stopGracePeriodMs),
    readOnlyRootfs: s.readOnlyRootfs ?? DEFAULTS.readOnlyRootfs,
    capabilities: {
      add: (s.capabilities?.add ?? []).map(capabilityName),
      drop: (s.capabilities?.drop ?? []).map(capabilityName),
    },
    userns: s.userns ?? null,
  };
  return { name: m.metadata.name, labels: m.metadata.labels ?? {}, spec };
}

/** checks.ts accepted the name: `cap_kill` → `KILL`, `all` → `ALL`. */
function capabilityName(name: string): string {
  const upper = name.trim().toUpperCase().replace(/^CAP_/, '');
  return upper === 'ALL' ? upper : (normalizeCapability(upper) ?? upper);
}

/** JSON with object keys sorted at every depth, so equal values always serialize alike. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

const sha = (value: unknown): string => createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16);

/** Hash of the whole desired object: any change to it is a new revision. */
export function specHash(obj: ServiceObject): string {
  return sha({ labels: obj.labels, spec: obj.spec });
}

/**
 * Hash of what goes into an instance. Only a change here replaces running
 * instances (a rolling update); replicas, autoscale, update strategy, health
 * checks and published ports are acted on without touching the containers.
 */
export function templateHash(spec: ServiceSpec): string {
  const { image, build, command, args, env, workingDir, user, resources, volumes } = spec;
  // Confinement at its defaults leaves the hash as a carte from before these fields made it,
  // so upgrading does not replace every running instance.
  const security = {
    ...(spec.readOnlyRootfs ? { readOnlyRootfs: true } : {}),
    ...(spec.capabilities?.add.length ? { capAdd: spec.capabilities.add } : {}),
    ...(spec.capabilities?.drop.length ? { capDrop: spec.capabilities.drop } : {}),
    ...(spec.userns ? { userns: true } : {}),
  };
  // Secret references (never values) are part of the template; absent ones leave the hash as before them.
  // A changed value rolls the services through a new revision instead (src/api/secrets.ts).
  const secrets = {
    ...(spec.secretEnv && Object.keys(spec.secretEnv).length ? { secretEnv: spec.secretEnv } : {}),
    ...(spec.secrets?.length ? { secretVolumes: spec.secrets } : {}),
  };
  return sha({
    image, build, command, args, env, workingDir, user, resources, volumes,
    ...(Object.keys(security).length ? { security } : {}), ...secrets,
  });
}

/** Canonical → manifest with human units and defaults shown, for `get -o yaml`, `describe` and `diff`. */
export function toManifest(obj: ServiceObject): ServiceManifest {
  const s = obj.spec;
  const spec: Record<string, unknown> = {};
  if (s.image !== null) spec.image = s.image;
  if (s.pullPolicy) spec.pullPolicy = s.pullPolicy;
  if (s.build !== null) spec.build = { context: s.build.context, cartefile: s.build.cartefile, ...(Object.keys(s.build.args).length ? { args: s.build.args } : {}), ...(s.build.network ? { network: true } : {}) };
  if (s.command !== null) spec.command = s.command;
  if (s.args !== null) spec.args = s.args;
  const env = { ...s.env, ...(s.secretEnv ?? {}) };
  if (Object.keys(env).length) spec.env = env;
  if (s.workingDir !== null) spec.workingDir = s.workingDir;
  if (s.user !== null) spec.user = s.user;
  spec.replicas = s.replicas;
  const r: Record<string, unknown> = {};
  if (s.resources.cpuMillis !== null) r.cpu = formatCpu(s.resources.cpuMillis);
  if (s.resources.memoryBytes !== null) r.memory = formatMemory(s.resources.memoryBytes);
  if (s.resources.pids !== null) r.pids = s.resources.pids;
  if (Object.keys(r).length) spec.resources = r;
  if (s.ports.length) {
    spec.ports = s.ports.map((p) => ({
      name: p.name, port: p.port, protocol: p.protocol,
      ...(p.publish === null ? {} : {
        publish: p.publish.address === null && p.publish.host === null ? p.publish.port
          : { port: p.publish.port, ...(p.publish.address ? { address: p.publish.address } : {}), ...(p.publish.host ? { host: p.publish.host } : {}) },
      }),
      balance: p.balance,
    }));
  }
  if (s.volumes.length) {
    spec.volumes = s.volumes.map((v) => (v.kind === 'named'
      ? { name: v.name, mountPath: v.mountPath, readOnly: v.readOnly }
      : { hostPath: v.hostPath, mountPath: v.mountPath, readOnly: v.readOnly }));
  }
  if (s.secrets?.length) {
    spec.secrets = s.secrets.map((v) => ({
      name: v.name, mountPath: v.mountPath, ...(v.items ? { items: v.items } : {}), mode: `0${v.mode.toString(8)}`,
    }));
  }
  if (s.health) {
    const c = s.health.check;
    spec.health = {
      ...(c.kind === 'http' ? { http: { path: c.path, port: c.port } } : c.kind === 'tcp' ? { tcp: { port: c.port } } : { exec: { command: c.command } }),
      interval: formatDuration(s.health.intervalMs),
      timeout: formatDuration(s.health.timeoutMs),
      failureThreshold: s.health.failureThreshold,
      startPeriod: formatDuration(s.health.startPeriodMs),
    };
  }
  spec.restart = s.restart;
  spec.update = {
    maxSurge: formatIntOrPercent(s.update.maxSurge),
    maxUnavailable: formatIntOrPercent(s.update.maxUnavailable),
    progressDeadline: formatDuration(s.update.progressDeadlineMs),
  };
  if (s.autoscale) {
    const a = s.autoscale;
    spec.autoscale = {
      min: a.min, max: a.max,
      ...(a.cpuPercent !== null ? { cpu: `${a.cpuPercent}%` } : {}),
      ...(a.memoryPercent !== null ? { memory: `${a.memoryPercent}%` } : {}),
      scaleDownDelay: formatDuration(a.scaleDownDelayMs),
      ...(a.idleToZeroMs !== null ? { idleToZero: formatDuration(a.idleToZeroMs) } : {}),
      ...(a.schedule.length ? {
        schedule: a.schedule.map((w) => ({
          cron: w.cron, duration: formatDuration(w.durationMs),
          ...(w.min !== null ? { min: w.min } : {}), ...(w.max !== null ? { max: w.max } : {}),
        })),
      } : {}),
    };
  }
  if (s.dependsOn.length) spec.dependsOn = s.dependsOn;
  if (s.allowFrom) spec.allowFrom = s.allowFrom;
  spec.stopGracePeriod = formatDuration(s.stopGracePeriodMs);
  // Absent in specs stored by an older carte: shown only when known.
  if (s.readOnlyRootfs !== undefined) spec.readOnlyRootfs = s.readOnlyRootfs;
  if (s.capabilities && (s.capabilities.add.length || s.capabilities.drop.length)) {
    spec.capabilities = { ...(s.capabilities.add.length ? { add: s.capabilities.add } : {}), ...(s.capabilities.drop.length ? { drop: s.capabilities.drop } : {}) };
  }
  if (typeof s.userns === 'boolean') spec.userns = s.userns;
  return {
    apiVersion: API_VERSION,
    kind: 'Service',
    metadata: { name: obj.name, ...(Object.keys(obj.labels).length ? { labels: obj.labels } : {}) },
    spec: spec as ServiceManifest['spec'],
  };
}
