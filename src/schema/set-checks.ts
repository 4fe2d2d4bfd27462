// Rules over a whole set of services: names unique, dependencies present and
// acyclic, services named in allowFrom present, published host ports not
// claimed twice. The set mixes services
// read from manifests now (located) and services already stored (not
// located); only problems that involve at least one manifest are reported,
// because that is what the user can fix in this apply.
import type { ManifestProblem, SourcePosition } from '../errors.js';
import { formatPath, type PathSegment } from './locate.js';
import { closest } from './validate.js';
import type { ServiceSpec } from './types.js';

export interface SetMember {
  name: string;
  spec: ServiceSpec;
  /** Where a field of this service is written; null for a stored service. */
  locate: ((segments: PathSegment[]) => SourcePosition) | null;
  /** How to name this member in a message: `manifests/login.yaml:3:9` or `stored service "login" (source cli)`. */
  describe: string;
}

/**
 * @param opts.dependenciesKnown false when the stored services are not known
 *   (manifests checked on their own): a dependency (or a service allowFrom
 *   names) missing from the set may still be stored, so only cycles are
 *   reported then.
 */
export function checkSet(members: readonly SetMember[], opts: { dependenciesKnown: boolean }): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (m: SetMember, segments: PathSegment[], message: string) => {
    if (m.locate) problems.push({ position: m.locate(segments), path: formatPath(segments), message });
  };

  // Duplicate names: the first member keeps the name, later ones are reported.
  const byName = new Map<string, SetMember>();
  for (const m of members) {
    const first = byName.get(m.name);
    if (first) report(m, ['metadata', 'name'], `service "${m.name}" is already defined at ${first.describe}`);
    else byName.set(m.name, m);
  }

  for (const m of opts.dependenciesKnown ? byName.values() : []) {
    m.spec.dependsOn.forEach((dep, i) => {
      if (!byName.has(dep)) {
        report(m, ['spec', 'dependsOn', i], `depends on "${dep}", which is neither in these manifests nor stored`);
      }
    });
  }
  for (const m of opts.dependenciesKnown ? byName.values() : []) {
    (m.spec.allowFrom ?? []).forEach((name, i) => {
      if (name === '*' || byName.has(name)) return;
      const guess = closest(name, [...byName.keys()]);
      report(m, ['spec', 'allowFrom', i], `service "${name}" does not exist${guess ? ` (did you mean "${guess}"?)` : ''}`);
    });
  }
  for (const cycle of findCycles(byName)) {
    const m = cycle.map((n) => byName.get(n)!).find((x) => x.locate) ?? null;
    if (m) {
      const at = m.spec.dependsOn.indexOf(cycle[(cycle.indexOf(m.name) + 1) % cycle.length]!);
      const from = cycle.indexOf(m.name);
      const ordered = [...cycle.slice(from), ...cycle.slice(0, from), m.name];
      report(m, ['spec', 'dependsOn', at], `dependency cycle: ${ordered.join(' → ')}`);
    }
  }

  // Published ports: one owner per (protocol, host port), except HTTP-mode
  // publishes that share a port with distinct Host names.
  const claims = new Map<string, Array<{ m: SetMember; index: number; host: string | null }>>();
  for (const m of byName.values()) {
    m.spec.ports.forEach((p, index) => {
      if (!p.publish) return;
      const key = `${p.protocol}/${p.publish.port}`;
      const list = claims.get(key) ?? [];
      for (const other of list) {
        const shared = p.publish.host !== null && other.host !== null && p.publish.host !== other.host;
        if (shared) continue;
        const what = p.publish.host !== null && other.host !== null ? `host ${p.publish.host} on ${p.protocol} port ${p.publish.port}` : `${p.protocol} port ${p.publish.port}`;
        report(m, ['spec', 'ports', index, 'publish'], `${what} is already published by service "${other.m.name}" (${other.m.describe})`);
        if (!m.locate) report(other.m, ['spec', 'ports', other.index, 'publish'], `${what} is already published by service "${m.name}" (${m.describe})`);
      }
      list.push({ m, index, host: p.publish.host });
      claims.set(key, list);
    });
  }
  return problems;
}

/** Each elementary cycle in the dependsOn graph, reported once (depth-first, colouring). */
function findCycles(byName: Map<string, SetMember>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string) => {
    state.set(name, 'visiting');
    stack.push(name);
    for (const dep of byName.get(name)?.spec.dependsOn ?? []) {
      if (!byName.has(dep)) continue;
      if (state.get(dep) === 'visiting') cycles.push(stack.slice(stack.indexOf(dep)));
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of byName.keys()) if (!state.has(name)) visit(name);
  return cycles;
}
