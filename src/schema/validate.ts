// Schema validation with ajv (compiled once per process), and the translation
// of ajv's errors into sentences a person can act on, each located at the
// line and column of the offending value through a Locator.
import { Ajv, type ErrorObject, type SchemaObject, type ValidateFunction } from 'ajv';
import * as ajvFormats from 'ajv-formats';
import cron from 'node-cron';
import { isIP } from 'node:net';
import type { ManifestProblem } from '../errors.js';
import { formatPath, type Locator, type PathSegment } from './locate.js';
import { SealedSecretManifestSchema, ServiceManifestSchema } from './service-schema.js';
import { parseCpu, parseDuration, parseIntOrPercent, parseMemory, parsePercent, type Parsed } from './units.js';

// ajv-formats is CommonJS with `exports.default`; under NodeNext that arrives one level down.
const addFormats = ajvFormats.default.default;

const UNIT_PARSERS: Record<string, (v: unknown) => Parsed | { ok: boolean; message?: string }> = {
  cpu: parseCpu,
  memory: parseMemory,
  duration: parseDuration,
  percent: parsePercent,
  'int-or-percent': parseIntOrPercent,
  cron: (v) => {
    const r = cron.validateDetailed(String(v));
    return r.valid ? { ok: true } : { ok: false, message: `${JSON.stringify(v)} is not a cron expression: ${r.errors[0]?.message ?? 'invalid'} (use e.g. "0 9 * * 1-5")` };
  },
  ip: (v) => (isIP(String(v)) ? { ok: true } : { ok: false, message: `${JSON.stringify(v)} is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0)` }),
};

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true, verbose: true });
  addFormats(ajv, ['hostname']);
  ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });
  ajv.addKeyword({
    keyword: 'x-unit',
    schemaType: 'string',
    errors: true,
    validate: function unit(this: unknown, kind: string, data: unknown): boolean {
      const r = UNIT_PARSERS[kind]!(data);
      if (r.ok) return true;
      (unit as unknown as { errors: Partial<ErrorObject>[] }).errors = [{ keyword: 'x-unit', message: r.message ?? 'invalid', params: { unit: kind } }];
      return false;
    },
  });
  return ajv;
}

let shared: Ajv | undefined;

/**
 * A validator for any carte schema (the manifest's, the server policy's):
 * compiled on first use, with the x-unit and x-hint keywords, every error
 * translated into a located sentence.
 */
export function schemaValidator(schema: SchemaObject): (data: unknown, locator: Locator) => ManifestProblem[] {
  let compiled: ValidateFunction | undefined;
  return (data, locator) => {
    compiled ??= (shared ??= makeAjv()).compile(schema);
    return compiled(data) ? [] : translateAll(compiled.errors ?? [], locator);
  };
}

const serviceValidator = schemaValidator(ServiceManifestSchema);

/** Validates one Service document against the schema; returns every problem, located. */
export function validateService(data: unknown, locator: Locator): ManifestProblem[] {
  return serviceValidator(data, locator);
}

const sealedValidator = schemaValidator(SealedSecretManifestSchema);

/** Validates one SealedSecret document against the schema; returns every problem, located. */
export function validateSealedSecret(data: unknown, locator: Locator): ManifestProblem[] {
  return sealedValidator(data, locator);
}

function translateAll(errors: ErrorObject[], locator: Locator): ManifestProblem[] {
  const seen = new Set<string>();
  const problems: ManifestProblem[] = [];
  // A unit parser's sentence ("5 has no unit (write e.g. 5s)") says more than
  // the type error ajv also raises for the same value; keep only the sentence.
  const unitPaths = new Set(errors.filter((e) => e.keyword === 'x-unit').map((e) => e.instancePath));
  for (const err of errors) {
    if (err.keyword === 'type' && unitPaths.has(err.instancePath)) continue;
    const p = translate(err, locator);
    const key = `${p.path}\u0000${p.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(p);
    }
  }
  return problems;
}

function pathOf(instancePath: string): PathSegment[] {
  if (!instancePath) return [];
  return instancePath.split('/').slice(1).map((s) => {
    const seg = s.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^\d+$/.test(seg) ? Number(seg) : seg;
  });
}

// JSON.stringify would print YAML's .nan and .inf as null, and a Buffer (!!binary) field by field.
const show = (v: unknown): string => (v === null ? 'null'
  : typeof v === 'object' ? (Array.isArray(v) ? 'a list' : 'a mapping')
    : typeof v === 'number' ? String(v) : JSON.stringify(v));

function typeName(t: unknown): string {
  const names: Record<string, string> = {
    integer: 'a whole number', number: 'a number', string: 'a string', boolean: 'true or false',
    object: 'a mapping', array: 'a list', null: 'null',
  };
  const list = (Array.isArray(t) ? t : String(t).split(',')).map((x) => names[x] ?? x);
  return list.length === 1 ? list[0]! : `${list.slice(0, -1).join(', ')} or ${list.at(-1)}`;
}

function translate(err: ErrorObject, locator: Locator): ManifestProblem {
  const at = pathOf(err.instancePath);
  const located = (segments: PathSegment[], message: string, key = false): ManifestProblem => ({
    position: locator.locate(segments, { key }),
    path: formatPath(segments),
    message,
  });
  const params = err.params as Record<string, unknown>;
  const parent = err.parentSchema as SchemaObject | undefined;
  switch (err.keyword) {
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const known = Object.keys((parent?.properties as object | undefined) ?? {});
      const guess = closest(field, known);
      const hint = guess ? ` (did you mean "${guess}"?)` : known.length ? ` (known fields: ${known.join(', ')})` : '';
      return located([...at, field], `unknown field "${field}"${hint}`, true);
    }
    case 'required':
      return located(at, `missing required field "${String(params.missingProperty)}"`);
    case 'type': {
      // A value that may take several shapes says so in its own words (x-hint) rather than as a list of types.
      const hint = Array.isArray(parent?.type) ? parent?.['x-hint'] as string | undefined : undefined;
      return located(at, `expected ${hint ?? typeName(params.type)}, got ${show(err.data)}`);
    }
    case 'enum':
      return located(at, `${show(err.data)} is not one of: ${(params.allowedValues as unknown[]).join(', ')}`);
    case 'const':
      return located(at, `${show(err.data)} must be ${JSON.stringify(params.allowedValue)}`);
    case 'minimum':
    case 'exclusiveMinimum':
      return located(at, `${show(err.data)} is below the minimum of ${String(params.limit)}`);
    case 'maximum':
    case 'exclusiveMaximum':
      return located(at, `${show(err.data)} is above the maximum of ${String(params.limit)}`);
    case 'minItems':
      return located(at, `needs at least ${String(params.limit)} ${params.limit === 1 ? 'item' : 'items'}`);
    case 'uniqueItems':
      return located([...at, Number(params.i)], `${show((err.data as unknown[])[Number(params.i)])} is listed twice`);
    case 'minProperties':
      return located(at, `needs at least ${String(params.limit)} ${params.limit === 1 ? 'entry' : 'entries'}`);
    case 'minLength':
      return located(at, 'must not be empty');
    case 'pattern': {
      const hint = parent?.['x-hint'] as string | undefined;
      return located(at, hint ? `${show(err.data)} is not ${hint}` : `${show(err.data)} does not match ${String(params.pattern)}`);
    }
    case 'format':
      return located(at, `${show(err.data)} is not a valid ${String(params.format)}`);
    case 'x-unit':
      return located(at, err.message ?? 'invalid value');
    default:
      return located(at, err.message ?? 'invalid value');
  }
}

/** The known word nearest to a typo, if it is near enough to be a likely intent. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const near = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    // The distance is at least the difference in length: skipping far ones keeps a 1 MB field name from costing seconds.
    if (Math.abs(word.length - c.length) > near) continue;
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= near ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}
