// Reading the server policy file: YAML with positions, the schema (ajv, the
// same located sentences as manifests), then the rules that span fields.
// Parsing is pure (text in, policy or problems out); loadPolicy does the I/O
// and decides what a missing file means.
import fs from 'node:fs';
import path from 'node:path';
import { CarteError, ExitCode, formatProblem, UsageError, type ManifestProblem } from '../errors.js';
import { LINUX_CAPABILITIES, normalizeCapability } from '../schema/capabilities.js';
import { readYamlDocuments } from '../schema/load.js';
import { formatPath, type Locator, type PathSegment } from '../schema/locate.js';
import { formatCpu, formatMemory } from '../schema/units.js';
import { closest, schemaValidator } from '../schema/validate.js';
import { DEFAULT_POLICY, DEFAULT_POLICY_FILE, resolvePolicy, type PolicyRules, type ServerPolicy } from './policy.js';
import { PolicySchema, type PolicyInput, type PolicyRulesInput } from './schema.js';

/** A policy file that cannot be used: every problem, located; exit code 2. */
export class PolicyError extends CarteError {
  readonly problems: readonly ManifestProblem[];

  constructor(file: string, problems: ManifestProblem[]) {
    const n = problems.length;
    super('manifest-invalid', `${n} ${n === 1 ? 'problem' : 'problems'} in the server policy ${file}; it was not used`, {
      exitCode: ExitCode.invalidInput,
      details: problems.map(formatProblem),
    });
    this.problems = problems;
  }
}

const validatePolicy = schemaValidator(PolicySchema);

/** Parses a policy text; `display` names the file in messages. */
export function parsePolicy(text: string, display: string): { policy: ServerPolicy | null; problems: ManifestProblem[] } {
  const read = readYamlDocuments({ display, text });
  if (read.problems.length) return { policy: null, problems: read.problems };
  if (read.docs.length === 0) return { policy: resolvePolicy({}, display), problems: [] };
  const [first, second] = read.docs;
  if (second) {
    return { policy: null, problems: [{ position: second.locator.locate([]), path: '', message: 'a policy file holds one YAML document (remove this ---)' }] };
  }
  const { data, locator } = first!;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { policy: null, problems: [{ position: locator.locate([]), path: '', message: `the server policy must be a mapping of rules (volumes, resources, replicas, ...), not ${Array.isArray(data) ? 'a list' : JSON.stringify(data)}` }] };
  }
  const schemaProblems = validatePolicy(data, locator);
  if (schemaProblems.length) return { policy: null, problems: byPosition(schemaProblems) };
  const input = data as PolicyInput;
  const problems = checkPolicy(input, locator);
  if (problems.length) return { policy: null, problems: byPosition(problems) };
  return { policy: resolvePolicy(input, display), problems: [] };
}

/** As a reader meets them: by line, then column. */
function byPosition(problems: ManifestProblem[]): ManifestProblem[] {
  const key = (p: ManifestProblem) => (p.position ? p.position.line * 1e6 + p.position.column : 0);
  return problems.map((p, i) => ({ p, i })).sort((a, b) => key(a.p) - key(b.p) || a.i - b.i).map((x) => x.p);
}

/** Rules JSON Schema cannot say: capability names, and defaults within the maximum (in every section as it applies). */
function checkPolicy(input: PolicyInput, locator: Locator): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const report = (segments: PathSegment[], message: string) =>
    problems.push({ position: locator.locate(segments), path: formatPath(segments), message });
  const checkNames = (rules: PolicyRulesInput, at: PathSegment[]) => {
    (rules.capabilities?.allowAdd ?? []).forEach((name, i) => {
      if (normalizeCapability(name) !== null) return;
      const guess = closest(name.trim().toUpperCase().replace(/^CAP_/, ''), LINUX_CAPABILITIES);
      report([...at, 'capabilities', 'allowAdd', i], `${JSON.stringify(name)} is not a Linux capability${guess ? ` (did you mean "${guess}"?)` : ' (see capabilities(7), e.g. NET_BIND_SERVICE)'}`);
    });
  };
  checkNames(input, []);
  (input.sources ?? []).forEach((s, i) => checkNames(s, ['sources', i]));
  if (problems.length) return problems;

  const policy = resolvePolicy(input, null);
  // A section is checked for the fields it writes itself; what it inherits is reported at the top level.
  const checkLimits = (rules: PolicyRules, written: PolicyRulesInput, at: PathSegment[]) => {
    const { default: d, max } = rules.resources;
    const fields = [
      ['cpu', d.cpuMillis, max.cpuMillis, formatCpu],
      ['memory', d.memoryBytes, max.memoryBytes, formatMemory],
      ['pids', d.pids, max.pids, String],
    ] as const;
    for (const [field, dv, mv, fmt] of fields) {
      if (dv <= mv) continue;
      // Shown where it is written in this scope: the default, else the maximum.
      const where = written.resources?.default?.[field] !== undefined ? [...at, 'resources', 'default', field]
        : written.resources?.max?.[field] !== undefined ? [...at, 'resources', 'max', field] : null;
      if (where === null) continue;
      report(where, `the default ${field} (${fmt(dv as number)}) is above the maximum (${fmt(mv as number)}): a manifest that sets none would be refused`);
    }
  };
  checkLimits(policy.rules, input, []);
  policy.sources.forEach((s, i) => checkLimits(s.rules, input.sources![i]!, ['sources', i]));
  return problems;
}

export interface PolicyLocation {
  file: string;
  /** Named by --policy or CARTE_POLICY: then a missing file is an error, not the defaults. */
  explicit: boolean;
}

/** Which file: --policy, else $CARTE_POLICY, else /etc/carte/policy.yaml. */
export function policyLocation(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): PolicyLocation {
  if (flag) return { file: path.resolve(flag), explicit: true };
  if (env.CARTE_POLICY) return { file: path.resolve(env.CARTE_POLICY), explicit: true };
  return { file: DEFAULT_POLICY_FILE, explicit: false };
}

/**
 * Reads the policy. A missing default file means the built-in defaults; a
 * missing file that was named explicitly is an error (a typo in --policy must
 * not silently loosen nothing and tighten nothing).
 */
export function loadPolicy(where: PolicyLocation): ServerPolicy {
  let text: string;
  try {
    text = fs.readFileSync(where.file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !where.explicit) return DEFAULT_POLICY;
    throw new UsageError(`cannot read the server policy ${where.file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (e as Error).message}`);
  }
  const { policy, problems } = parsePolicy(text, where.file);
  if (!policy) throw new PolicyError(where.file, problems);
  return policy;
}
