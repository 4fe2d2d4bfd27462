// A stored revision admitted again under the policy in force: what a rollback
// must pass (an old revision may predate a tighter policy), and how a
// reloaded policy finds the stored services that no longer fit it. The spec
// is written out as a manifest and goes through the same parse and admission
// as any manifest of its source. Pure.
//
// The build context is not held to a source tree here: it was when the
// revision was applied (that tree is out of view now), and the image builder
// checks it again by its real path whenever it builds.
import { stringify } from 'yaml';
import { formatProblem } from '../errors.js';
import { toManifest } from '../schema/canonical.js';
import { parseManifests } from '../schema/load.js';
import type { ServiceSpec } from '../schema/types.js';
import type { Revision, StateData } from '../store/state.js';
import { admit, type AdmissionContext } from './admit.js';

export interface Readmitted {
  /** The spec with the policy's defaults filled in (as an apply would store it); null when refused. */
  spec: ServiceSpec | null;
  /** Each refusal as `field: why` (no file positions: the user never saw this text). */
  problems: string[];
}

/** `revision` of stored service `name`, admitted under `admission` as its own source. */
export function readmitRevision(data: StateData, name: string, revision: Revision, admission: AdmissionContext): Readmitted {
  const source = data.services[name]?.source ?? revision.source;
  const text = stringify(toManifest({ name, labels: revision.labels, spec: revision.spec }), { lineWidth: 0 });
  const parsed = parseManifests([{ display: `revision ${revision.revision} of service/${name}`, baseDir: '/', root: '/', text }]);
  const strip = (ps: typeof parsed.problems) => ps.map((p) => formatProblem({ ...p, position: null }));
  if (parsed.problems.length) return { spec: null, problems: strip(parsed.problems) };
  const { services, problems } = admit(parsed.services, { ...admission, source, stored: Object.values(data.services), pruned: new Set() });
  if (problems.length) return { spec: null, problems: strip(problems) };
  return { spec: services[0]!.object.spec, problems: [] };
}

/** Every stored service whose current revision the policy would refuse now, with why. */
export function checkStoredServices(data: StateData, admission: AdmissionContext): Array<{ service: string; problems: string[] }> {
  return Object.values(data.services)
    .map((s) => ({ service: s.name, problems: readmitRevision(data, s.name, s.revision, admission).problems }))
    .filter((v) => v.problems.length > 0)
    .sort((a, b) => (a.service < b.service ? -1 : 1));
}
