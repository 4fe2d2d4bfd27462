// Admission: the server policy applied to a set of manifests from one source,
// after the schema and the checks, before anything is stored. One pure
// function: every refusal is a problem located at the offending field, and
// the services come back with the policy's defaults written into their spec
// (resource limits, read-only host mounts, the user namespace), the way a
// Kubernetes LimitRange fills a Pod, so `carte get -o yaml` shows them.
// The file system is read only through the injected `realpath`.
import path from 'node:path';
import type { ManifestProblem } from '../errors.js';
import { DEFAULT_CAPABILITIES } from '../schema/capabilities.js';
import type { LoadedService } from '../schema/load.js';
import { formatPath, type PathSegment } from '../schema/locate.js';
import type { ServiceSpec } from '../schema/types.js';
import { formatCpu, formatMemory } from '../schema/units.js';
import type { SourceId, StoredService } from '../store/state.js';
import { collision, isWithin, refusedLocations, resolveReal, type RealPath } from './host-paths.js';
import { rulesFor, type HostPathRule, type PolicyRules, type ServerPolicy } from './policy.js';

/** What admission needs beyond the manifests: the policy, and the facts of this machine. */
export interface AdmissionContext {
  policy: ServerPolicy;
  /** CARTE_HOME, never mounted into a container. */
  home: string;
  /** fs.realpathSync in production (see hostRealPath), a table in tests. */
  realpath: RealPath;
}

export interface AdmitInput extends AdmissionContext {
  source: SourceId;
  /** Every service stored now, of every source (for the total replica count). */
  stored: readonly StoredService[];
  /** Stored services this apply deletes (--prune, or a folder/Git source's whole set). */
  pruned: ReadonlySet<string>;
}

export interface Admitted {
  /** The services, their specs completed with the policy's defaults. */
  services: LoadedService[];
  problems: ManifestProblem[];
}

/** How many instances a service may run at most: its replicas, or its autoscaling ceiling. */
export function peakReplicas(spec: ServiceSpec): number {
  const a = spec.autoscale;
  if (!a) return spec.replicas;
  return Math.max(a.max, ...a.schedule.flatMap((w) => [w.min ?? 0, w.max ?? 0]));
}

const describeHostPaths = (rules: readonly HostPathRule[]) =>
  (rules.length ? rules.map((r) => `${r.path} (${r.write ? 'read-write' : 'read-only'})`).join(', ') : 'none');

export function admit(services: readonly LoadedService[], input: AdmitInput): Admitted {
  const { rules } = rulesFor(input.policy, input.source);
  const problems: ManifestProblem[] = [];
  const locations = refusedLocations(input.home);
  const realHome = resolveReal(input.home, input.realpath);
  if (realHome !== path.posix.resolve(input.home)) locations.push({ path: realHome, what: "CARTE_HOME, carte's own state" });

  const admitted = services.map((svc) => {
    const mine: ManifestProblem[] = [];
    const report = (segments: PathSegment[], message: string) =>
      mine.push({ position: svc.locate(segments), path: formatPath(segments), message });
    const spec = admitSpec(svc, rules, { ...input, locations }, report);
    // As a reader meets them in the file.
    problems.push(...mine.map((p, i) => ({ p, i })).sort((a, b) => place(a.p) - place(b.p) || a.i - b.i).map((x) => x.p));
    return { ...svc, object: { ...svc.object, spec } };
  });

  checkTotal(admitted, rules, input, problems);
  return { services: admitted, problems };
}

const place = (p: ManifestProblem) => (p.position ? p.position.line * 1e6 + p.position.column : 0);

type Report = (segments: PathSegment[], message: string) => void;

function admitSpec(svc: LoadedService, rules: PolicyRules, env: AdmitInput & { locations: ReturnType<typeof refusedLocations> }, report: Report): ServiceSpec {
  const written = svc.manifest.spec;
  const s = svc.object.spec;

  // Host folders: inside an allowed prefix (as written and as really resolved), never a refused location,
  // read-only unless the prefix allows writing.
  const volumes = s.volumes.map((v, i) => {
    if (v.kind !== 'host') return v;
    const raw = written.volumes?.[i]?.hostPath ?? v.hostPath;
    const real = resolveReal(v.hostPath, env.realpath);
    const shown = `${JSON.stringify(raw)}${real !== raw ? ` (${real})` : ''}`;
    const at: PathSegment[] = ['spec', 'volumes', i, 'hostPath'];
    const prefix = rules.volumes.hostPaths
      .filter((r) => isWithin(v.hostPath, r.path) && isWithin(real, resolveReal(r.path, env.realpath)))
      .sort((a, b) => b.path.length - a.path.length)[0];
    if (!prefix) {
      report(at, `${shown} is not allowed by the server policy (allowed host paths: ${describeHostPaths(rules.volumes.hostPaths)})`);
      return v;
    }
    const hit = collision(v.hostPath, env.locations) ?? collision(real, env.locations);
    if (hit) {
      const where = hit.how === 'is' ? `it is ${hit.location.what}` : `it ${hit.how === 'inside' ? 'is inside' : 'contains'} ${hit.location.path} (${hit.location.what})`;
      report(at, `${shown} is never mounted into a container, whatever the server policy says: ${where}`);
      return v;
    }
    if (prefix.write) return v;
    if (written.volumes?.[i]?.readOnly === false) {
      report(['spec', 'volumes', i, 'readOnly'], `false is not allowed: the server policy mounts ${prefix.path} read-only (remove readOnly, or set it to true)`);
    }
    return { ...v, readOnly: true };
  });

  // Resources: the default where none is set, nothing above the maximum.
  const { default: dflt, max } = rules.resources;
  const resources = { ...s.resources };
  const limit = (field: 'cpu' | 'memory' | 'pids', key: 'cpuMillis' | 'memoryBytes' | 'pids', fmt: (n: number) => string) => {
    const value = resources[key];
    if (value === null) {
      resources[key] = dflt[key];
    } else if (value > max[key]) {
      report(['spec', 'resources', field], `${String(written.resources?.[field] ?? fmt(value)).trim()} is above the server policy's maximum of ${fmt(max[key])}`);
    }
  };
  limit('cpu', 'cpuMillis', formatCpu);
  limit('memory', 'memoryBytes', formatMemory);
  limit('pids', 'pids', String);

  // Replicas of this service.
  const perService = rules.replicas.perService;
  const above = (n: number) => `${n} is above the server policy's maximum of ${perService} replicas per service`;
  if (!s.autoscale) {
    if (s.replicas > perService) report(['spec', 'replicas'], above(s.replicas));
  } else {
    if (s.autoscale.max > perService) report(['spec', 'autoscale', 'max'], above(s.autoscale.max));
    s.autoscale.schedule.forEach((w, i) => {
      for (const bound of ['min', 'max'] as const) {
        const n = w[bound];
        if (n !== null && n > perService) report(['spec', 'autoscale', 'schedule', i, bound], above(n));
      }
    });
  }

  // Capabilities: the default set may always be added back; anything else only if the policy says so.
  const adds = s.capabilities?.add ?? [];
  adds.forEach((cap, i) => {
    if ((DEFAULT_CAPABILITIES as readonly string[]).includes(cap) || rules.capabilities.allowAdd.includes(cap)) return;
    const allowed = rules.capabilities.allowAdd.length ? rules.capabilities.allowAdd.join(', ') : 'none';
    report(['spec', 'capabilities', 'add', i], `${cap} is not allowed by the server policy (capabilities a manifest may add beyond the default set: ${allowed})`);
  });

  // User namespace: the policy's default where none is said; required means required.
  let userns = s.userns ?? rules.userns.default;
  if (rules.userns.required) {
    if (written.userns === false) report(['spec', 'userns'], 'false is not allowed: the server policy requires a user namespace (remove userns, or set it to true)');
    userns = true;
  }

  if (s.build?.network && !rules.builds.network) {
    report(['spec', 'build', 'network'], 'true is not allowed by the server policy: add "builds: { network: true }" to it (its top level, or the section of this source)');
  }

  // Build contexts stay inside the tree the manifest came from (as written and as really resolved).
  let build = s.build;
  if (s.build && rules.builds.contextInsideSource) {
    const root = path.posix.resolve(svc.root);
    const real = resolveReal(s.build.context, env.realpath);
    const contextOutside = !isWithin(s.build.context, root) || !isWithin(real, resolveReal(root, env.realpath));
    if (contextOutside) {
      const raw = written.build?.context ?? s.build.context;
      report(['spec', 'build', 'context'], `${JSON.stringify(raw)} (${real}) is outside the source tree ${root}: the server policy keeps build contexts inside it`);
    }
    // The Cartefile too (an absolute `cartefile` could name any world-readable file of the host).
    const cartefile = path.posix.resolve(s.build.context, s.build.cartefile);
    const realCartefile = resolveReal(cartefile, env.realpath);
    if (!contextOutside && (!isWithin(cartefile, root) || !isWithin(realCartefile, resolveReal(root, env.realpath)))) {
      report(['spec', 'build', 'cartefile'], `${JSON.stringify(written.build?.cartefile ?? s.build.cartefile)} (${realCartefile}) is outside the source tree ${root}: the server policy keeps Cartefiles inside it`);
    }
    // Stored by its real path: the builder builds a context only by its real path, so a folder
    // swapped for a link after this check (before a rebuild) is refused there.
    build = { ...s.build, context: real };
  }

  return { ...s, volumes, resources, userns, build };
}

/**
 * Every service's peak replicas together, as they would stand after this
 * apply, within `replicas.total`. An apply that does not raise the sum is
 * never refused for it, so a server above a lowered total can still shrink.
 */
function checkTotal(admitted: readonly LoadedService[], rules: PolicyRules, input: AdmitInput, problems: ManifestProblem[]): void {
  const incoming = new Map(admitted.map((s) => [s.object.name, s]));
  const storedByName = new Map(input.stored.map((s) => [s.name, s]));
  const before = input.stored.reduce((n, s) => n + peakReplicas(s.revision.spec), 0);
  const mine = [...incoming.values()].reduce((n, s) => n + peakReplicas(s.object.spec), 0);
  const others = input.stored
    .filter((s) => !incoming.has(s.name) && !input.pruned.has(s.name))
    .reduce((n, s) => n + peakReplicas(s.revision.spec), 0);
  const after = mine + others;
  if (after <= rules.replicas.total || after <= before) return;
  // Shown at the first service that grows: the one to change.
  const grower = [...incoming.values()].find((s) => {
    const old = storedByName.get(s.object.name);
    return peakReplicas(s.object.spec) > (old ? peakReplicas(old.revision.spec) : 0);
  }) ?? admitted[0]!;
  const segments: PathSegment[] = grower.object.spec.autoscale ? ['spec', 'autoscale', 'max'] : ['spec', 'replicas'];
  problems.push({
    position: grower.locate(segments),
    path: formatPath(segments),
    message: `the services would have ${after} replicas in all, above the server policy's total of ${rules.replicas.total} (these manifests: ${mine}; every other service: ${others}; an autoscaled service counts at its maximum)`,
  });
}
