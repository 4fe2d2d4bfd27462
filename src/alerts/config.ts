// The `alerts:` section of the daemon config file (`carte daemon --config
// FILE`): webhooks and rule overrides, checked with the same located
// sentences as manifests (file:line:column: path: problem). Parsing is pure
// (text in, config or problems out); loadAlertsConfig reads the file.
import fs from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { CarteError, ExitCode, formatProblem, UsageError, type ManifestProblem } from '../errors.js';
import { readYamlDocuments } from '../schema/load.js';
import { formatPath, type PathSegment } from '../schema/locate.js';
import { parseDuration } from '../schema/units.js';
import { schemaValidator } from '../schema/validate.js';
import { resolveRules, RULE_NAMES, THRESHOLD_RULES, type RuleSettings, type RuleSettingsMap } from './rules.js';
import type { AlertRuleName } from './types.js';

export interface WebhookConfig {
  url: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

export interface AlertsConfig {
  /** How often the rules are evaluated. */
  intervalMs: number;
  rules: RuleSettingsMap;
  webhooks: WebhookConfig[];
}

export const DEFAULT_INTERVAL_MS = 5000;
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 5000;
const TIMEOUT_MIN_MS = 100;
const TIMEOUT_MAX_MS = 60_000;
const INTERVAL_MIN_MS = 100;
const INTERVAL_MAX_MS = 5 * 60_000;

export function defaultAlertsConfig(): AlertsConfig {
  return { intervalMs: DEFAULT_INTERVAL_MS, rules: resolveRules(), webhooks: [] };
}

const Obj = <T extends Parameters<typeof Type.Object>[0]>(props: T) => Type.Object(props, { additionalProperties: false });
const Opt = Type.Optional;
const Duration = Type.Unsafe<string>({ type: 'string', 'x-unit': 'duration' });

const ruleSchema = (threshold: boolean) => Obj({
  enabled: Opt(Type.Boolean()),
  for: Opt(Duration),
  clear: Opt(Duration),
  ...(threshold ? { threshold: Opt(Type.Number({ exclusiveMinimum: 0, maximum: 1 })) } : {}),
});

const RulesSchema = Obj(Object.fromEntries(RULE_NAMES.map((n) => [n, Opt(ruleSchema(THRESHOLD_RULES.includes(n)))])));

export const AlertsSchema = Obj({
  interval: Opt(Duration),
  webhooks: Opt(Type.Array(Obj({
    url: Type.String({ pattern: '^[hH][tT][tT][pP][sS]?://', 'x-hint': 'an http:// or https:// URL' }),
    headers: Opt(Type.Record(Type.String(), Type.String())),
    timeout: Opt(Duration),
  }))),
  rules: Opt(RulesSchema),
});

/** Only the alerts section is this module's: the rest of the file (watch, git, ...) is read elsewhere. */
const ConfigSchema = Type.Object({ alerts: Opt(AlertsSchema) });

type RuleInput = { enabled?: boolean; for?: string; clear?: string; threshold?: number };
type AlertsInput = Omit<Static<typeof AlertsSchema>, 'rules'> & { rules?: Partial<Record<AlertRuleName, RuleInput>> };

const validateConfig = schemaValidator(ConfigSchema);

// RFC 9110 token; values without CR/LF (a header cannot be split into two).
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A daemon config file that cannot be used: every problem, located; exit code 2. */
export class DaemonConfigError extends CarteError {
  readonly problems: readonly ManifestProblem[];

  constructor(file: string, problems: ManifestProblem[]) {
    const n = problems.length;
    super('manifest-invalid', `${n} ${n === 1 ? 'problem' : 'problems'} in the daemon config ${file}; the daemon did not start`, {
      exitCode: ExitCode.invalidInput,
      details: problems.map(formatProblem),
    });
    this.problems = problems;
  }
}

/** The alerts section of a daemon config text; `display` names the file in messages. */
export function parseAlertsConfig(text: string, display: string): { config: AlertsConfig | null; problems: ManifestProblem[] } {
  const read = readYamlDocuments({ display, text });
  if (read.problems.length) return { config: null, problems: read.problems };
  const first = read.docs[0];
  if (!first || first.data === null || first.data === undefined) return { config: defaultAlertsConfig(), problems: [] };
  const { data, locator } = first;
  if (typeof data !== 'object' || Array.isArray(data)) {
    return { config: null, problems: [{ position: locator.locate([]), path: '', message: 'the daemon config must be a mapping (watch, git, alerts)' }] };
  }
  // `alerts:` with everything under it commented out is no alerts section, not an error.
  const { alerts, ...rest } = data as { alerts?: unknown };
  const schemaProblems = validateConfig(alerts === null ? rest : data, locator);
  if (schemaProblems.length) return { config: null, problems: byPosition(schemaProblems) };
  const input = (alerts ?? {}) as AlertsInput;

  const problems: ManifestProblem[] = [];
  const report = (segments: PathSegment[], message: string, key = false) =>
    problems.push({ position: locator.locate(segments, { key }), path: formatPath(segments), message });
  const ms = (text: string) => (parseDuration(text) as { value: number }).value; // checked by the schema

  let intervalMs = DEFAULT_INTERVAL_MS;
  if (input.interval !== undefined) {
    intervalMs = ms(input.interval);
    if (intervalMs < INTERVAL_MIN_MS || intervalMs > INTERVAL_MAX_MS) report(['alerts', 'interval'], `${input.interval} is outside 100ms to 5m`);
  }

  const webhooks: WebhookConfig[] = [];
  (input.webhooks ?? []).forEach((w, i) => {
    const at: PathSegment[] = ['alerts', 'webhooks', i];
    let url: URL | null = null;
    try {
      url = new URL(w.url);
    } catch {
      report([...at, 'url'], `${JSON.stringify(w.url)} is not a valid URL`);
    }
    if (url && !url.hostname) report([...at, 'url'], `${JSON.stringify(w.url)} names no host`);
    const headers = w.headers ?? {};
    for (const [name, value] of Object.entries(headers)) {
      if (!HEADER_NAME.test(name)) report([...at, 'headers', name], `${JSON.stringify(name)} is not a valid header name`, true);
      else if (/[\r\n\0]/.test(value)) report([...at, 'headers', name], 'a header value cannot hold a line break');
    }
    const timeoutMs = w.timeout === undefined ? DEFAULT_WEBHOOK_TIMEOUT_MS : ms(w.timeout);
    if (timeoutMs < TIMEOUT_MIN_MS || timeoutMs > TIMEOUT_MAX_MS) report([...at, 'timeout'], `${w.timeout} is outside 100ms to 1m`);
    if (url) webhooks.push({ url: url.href, headers, timeoutMs });
  });

  const overrides: Partial<Record<AlertRuleName, Partial<RuleSettings>>> = {};
  for (const [name, r] of Object.entries(input.rules ?? {}) as Array<[AlertRuleName, RuleInput]>) {
    overrides[name] = {
      enabled: r.enabled,
      forMs: r.for === undefined ? undefined : ms(r.for),
      clearMs: r.clear === undefined ? undefined : ms(r.clear),
      threshold: r.threshold,
    };
  }
  if (problems.length) return { config: null, problems: byPosition(problems) };
  return { config: { intervalMs, rules: resolveRules(overrides), webhooks }, problems: [] };
}

/** As a reader meets them: by line, then column. */
function byPosition(problems: ManifestProblem[]): ManifestProblem[] {
  const key = (p: ManifestProblem) => (p.position ? p.position.line * 1e6 + p.position.column : 0);
  return problems.map((p, i) => ({ p, i })).sort((a, b) => key(a.p) - key(b.p) || a.i - b.i).map((x) => x.p);
}

/** Reads the alerts section of the daemon config file (the defaults without one). */
export function loadAlertsConfig(file: string | undefined): AlertsConfig {
  if (file === undefined) return defaultAlertsConfig();
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`daemon: cannot read config ${file}: ${(e as Error).message}`);
  }
  const { config, problems } = parseAlertsConfig(text, file);
  if (!config) throw new DaemonConfigError(file, problems);
  return config;
}
