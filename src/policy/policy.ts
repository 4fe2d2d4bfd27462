// The server policy: what manifests written by people who are not root may
// ask of this machine (docs/policy.md). The file's rules, with every default
// filled in and units parsed, plus per-source sections: the first section
// whose `match` fits a source id overrides the top level's fields for it.
import path from 'node:path';
import { formatCpu, formatDuration, formatMemory, parseCpu, parseDuration, parseMemory } from '../schema/units.js';
import type { PolicyInput, PolicyRulesInput } from './schema.js';

export interface HostPathRule {
  /** An absolute, normalized folder on the host; host-path volumes must lie inside one. */
  path: string;
  /** Whether volumes under it may be mounted read-write (read-only otherwise). */
  write: boolean;
}

export interface ResourceLimits {
  cpuMillis: number;
  memoryBytes: number;
  pids: number;
}

export interface PolicyRules {
  volumes: { hostPaths: HostPathRule[] };
  /** `default` fills what a manifest leaves out; nothing may be above `max`. */
  resources: { default: ResourceLimits; max: ResourceLimits };
  /** Most replicas (or autoscale maximum) of one service, and of every service together. */
  replicas: { perService: number; total: number };
  /** Capabilities a manifest may add beyond the default set (upper case, no CAP_). */
  capabilities: { allowAdd: string[] };
  userns: { default: boolean; required: boolean };
  builds: {
    /** Host folders a Cartefile's `COPY --from=host` may read (enforced by the image builder). */
    hostCopyPrefixes: string[];
    /** A build.context must lie inside the manifest's source tree. */
    contextInsideSource: boolean;
    /** RUN steps may have the network (`carte build --network`); off: they run in an empty network namespace. */
    network: boolean;
    /** What one RUN step's build container may use (CPU, memory, processes, time). */
    limits: ResourceLimits & { timeoutMs: number };
  };
  /** Carried and shown; enforced by the disk accounting, not by admission. */
  disk: { reserveBytes: number; perServiceBytes: number };
  /** Enforced on the instances' network (the gateway and the host's firewall), not by admission. */
  network: NetworkRules;
}

/** Who instances reach (docs/security.md, "The network"). */
export interface NetworkRules {
  /** Ports of the host's own addresses this source's instances may connect to, beyond published ports. */
  hostPorts: Array<{ port: number; protocol: 'tcp' | 'udp' }>;
  /**
   * Who may connect to a service whose manifest has no allowFrom: the
   * services of its own source, every service, or none (published ports only).
   */
  allowFromDefault: 'same-source' | 'all' | 'none';
}

export interface SourceSection {
  /** A source id, or a pattern where `*` stands for any characters: `git:*`, `folder:/srv/*`, `cli`. */
  match: string;
  /** The top level's rules with this section's fields laid over them. */
  rules: PolicyRules;
}

export interface ServerPolicy {
  /** The file it was read from; null for the built-in defaults. */
  file: string | null;
  rules: PolicyRules;
  sources: SourceSection[];
  /** The top level's build settings, for the image builder: `policy.builds.hostCopyPrefixes`. */
  builds: PolicyRules['builds'];
}

/** Every rule written out, in the file's own form (what `carte policy show` prints). */
export interface FullRulesInput {
  volumes: { hostPaths: Array<{ path: string; write: boolean }> };
  resources: { default: { cpu: string; memory: string; pids: number }; max: { cpu: string; memory: string; pids: number } };
  replicas: { perService: number; total: number };
  capabilities: { allowAdd: string[] };
  userns: { default: boolean; required: boolean };
  builds: { hostCopyPrefixes: string[]; contextInsideSource: boolean; network: boolean; limits: { cpu: string; memory: string; pids: number; timeout: string } };
  disk: { reserve: string; perService: string };
  network: { hostPorts: Array<{ port: number; protocol: 'tcp' | 'udp' }>; allowFromDefault: 'same-source' | 'all' | 'none' };
}

/** The built-in defaults, in the file's own form: what `carte policy show` prints with no file. */
export const DEFAULT_POLICY_INPUT: FullRulesInput = {
  volumes: { hostPaths: [] },
  resources: {
    default: { cpu: '1', memory: '256Mi', pids: 512 },
    max: { cpu: '2', memory: '2Gi', pids: 4096 },
  },
  replicas: { perService: 20, total: 100 },
  capabilities: { allowAdd: [] },
  userns: { default: false, required: false },
  builds: {
    hostCopyPrefixes: ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc/ssl/certs', '/usr/share/zoneinfo'],
    contextInsideSource: true,
    network: false,
    limits: { cpu: '2', memory: '2Gi', pids: 1024, timeout: '20m' },
  },
  disk: { reserve: '1Gi', perService: '2Gi' },
  network: { hostPorts: [], allowFromDefault: 'same-source' },
};

export const DEFAULT_POLICY_FILE = '/etc/carte/policy.yaml';

function unit(p: { ok: true; value: number } | { ok: false; message: string }, what: string): number {
  if (!p.ok) throw new Error(`internal: ${what} passed validation but does not parse: ${p.message}`);
  return p.value;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over`'s fields laid over `base`'s, mapping by mapping; a list replaces a list whole. */
export function overlay<T>(base: T, over: unknown): T {
  if (!isObject(base) || !isObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? overlay(out[k], v) : v;
  return out as T;
}

/** Written rules (already schema-valid; capability names already checked) → effective rules. */
export function resolveRules(input: PolicyRulesInput): PolicyRules {
  const r = overlay<FullRulesInput>(DEFAULT_POLICY_INPUT, input);
  const limits = (l: { cpu: string | number; memory: string | number; pids: number }): ResourceLimits => ({
    cpuMillis: unit(parseCpu(l.cpu), 'cpu'), memoryBytes: unit(parseMemory(l.memory), 'memory'), pids: l.pids,
  });
  return {
    volumes: { hostPaths: r.volumes.hostPaths.map((h) => ({ path: path.posix.resolve(h.path), write: h.write === true })) },
    resources: { default: limits(r.resources.default), max: limits(r.resources.max) },
    replicas: { perService: r.replicas.perService, total: r.replicas.total },
    capabilities: { allowAdd: r.capabilities.allowAdd.map((c) => c.trim().toUpperCase().replace(/^CAP_/, '')) },
    userns: { default: r.userns.default, required: r.userns.required },
    builds: {
      hostCopyPrefixes: r.builds.hostCopyPrefixes.map((p) => path.posix.resolve(p)), contextInsideSource: r.builds.contextInsideSource, network: r.builds.network,
      limits: { ...limits(r.builds.limits), timeoutMs: unit(parseDuration(r.builds.limits.timeout), 'builds.limits.timeout') },
    },
    disk: { reserveBytes: unit(parseMemory(r.disk.reserve), 'disk.reserve'), perServiceBytes: unit(parseMemory(r.disk.perService), 'disk.perService') },
    network: { hostPorts: r.network.hostPorts.map((h) => ({ port: h.port, protocol: h.protocol ?? 'tcp' })), allowFromDefault: r.network.allowFromDefault },
  };
}

/** Builds the effective policy from a valid file's content (an empty file: the defaults). */
export function resolvePolicy(input: PolicyInput, file: string | null): ServerPolicy {
  const { sources = [], ...top } = input;
  const rules = resolveRules(top);
  return {
    file,
    rules,
    sources: sources.map(({ match, ...section }) => ({ match, rules: resolveRules(overlay(top, section)) })),
    builds: rules.builds,
  };
}

/** The built-in policy: what a server without /etc/carte/policy.yaml enforces. */
export const DEFAULT_POLICY: ServerPolicy = resolvePolicy({}, null);

/** Whether a `match` pattern fits a source id: `*` is any run of characters, everything else is literal. */
export function matchesSource(pattern: string, source: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
  return re.test(source);
}

/** The rules that apply to `source`: the first matching section's, else the top level's. */
export function rulesFor(policy: ServerPolicy, source: string): { rules: PolicyRules; section: number | null } {
  const i = policy.sources.findIndex((s) => matchesSource(s.match, source));
  return i === -1 ? { rules: policy.rules, section: null } : { rules: policy.sources[i]!.rules, section: i };
}

/** Effective rules back in the file's form, every default written out (`carte policy show`). */
export function rulesToInput(r: PolicyRules): FullRulesInput {
  const limits = (l: ResourceLimits) => ({ cpu: formatCpu(l.cpuMillis), memory: formatMemory(l.memoryBytes), pids: l.pids });
  return {
    volumes: { hostPaths: r.volumes.hostPaths.map((h) => ({ path: h.path, write: h.write })) },
    resources: { default: limits(r.resources.default), max: limits(r.resources.max) },
    replicas: { ...r.replicas },
    capabilities: { allowAdd: [...r.capabilities.allowAdd] },
    userns: { ...r.userns },
    builds: {
      hostCopyPrefixes: [...r.builds.hostCopyPrefixes], contextInsideSource: r.builds.contextInsideSource, network: r.builds.network,
      limits: { ...limits(r.builds.limits), timeout: formatDuration(r.builds.limits.timeoutMs) },
    },
    disk: { reserve: formatMemory(r.disk.reserveBytes), perService: formatMemory(r.disk.perServiceBytes) },
    network: { hostPorts: r.network.hostPorts.map((h) => ({ ...h })), allowFromDefault: r.network.allowFromDefault },
  };
}
