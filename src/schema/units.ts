// Parsing and printing of the units manifests use: CPU (`500m`, `0.5`),
// memory (`128Mi`, `1G`, bytes), durations (`500ms`, `1m30s`) and percentages
// (`70%`). Parsers return a number or a human sentence saying what is wrong,
// so the schema layer can turn it into a located error.

export type Parsed = { ok: true; value: number } | { ok: false; message: string };

const ok = (value: number): Parsed => ({ ok: true, value });
const bad = (message: string): Parsed => ({ ok: false, message });
// String() for numbers: JSON.stringify prints YAML's .nan and .inf as null.
const show = (v: unknown): string => (typeof v === 'number' ? String(v) : JSON.stringify(v));

/** CPU in millicores: `500m` → 500, `0.5` → 500, `2` → 2000 (like Kubernetes). */
export function parseCpu(input: unknown): Parsed {
  const hint = `${show(input)} is not a CPU amount (use e.g. 500m or 0.5)`;
  let millis: number;
  if (typeof input === 'number') {
    millis = input * 1000;
  } else if (typeof input === 'string') {
    const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(input.trim());
    if (!m) return bad(hint);
    millis = m[2] === 'm' ? Number(m[1]) : Number(m[1]) * 1000;
  } else {
    return bad(hint);
  }
  if (!Number.isFinite(millis) || millis <= 0) return bad(`${show(input)} is not a CPU amount above zero (use e.g. 500m or 0.5)`);
  // Round away float noise (0.1 * 1000 = 100.00000000000001) before the integer check.
  const rounded = Math.round(millis * 1e6) / 1e6;
  if (!Number.isInteger(rounded)) return bad(`${show(input)} is finer than 1m, the smallest CPU unit (use e.g. 1m or 0.001)`);
  return ok(rounded);
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
};

/** The smallest memory limit a container can start with (Docker's floor, 6 MB). */
export const MIN_MEMORY_BYTES = 6 * 2 ** 20;

/** Memory in bytes: `128Mi`, `1Gi`, `500M`, `1048576`. */
export function parseMemory(input: unknown): Parsed {
  const hint = `${show(input)} is not a memory size (use e.g. 128Mi)`;
  let bytes: number;
  if (typeof input === 'number') {
    bytes = input;
  } else if (typeof input === 'string') {
    const m = /^(\d+(?:\.\d+)?)([kKMGT]i?)?$/.exec(input.trim());
    if (!m) return bad(hint);
    const unit = MEMORY_UNITS[m[2] ?? ''];
    if (unit === undefined) return bad(hint);
    bytes = Number(m[1]) * unit;
  } else {
    return bad(hint);
  }
  if (!Number.isFinite(bytes) || !Number.isInteger(bytes)) return bad(`${show(input)} is not a whole number of bytes (use e.g. 128Mi)`);
  if (bytes < MIN_MEMORY_BYTES) return bad(`${show(input)} is below 6Mi, too little for any container (use e.g. 64Mi)`);
  return ok(bytes);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Durations in milliseconds: `500ms`, `5s`, `1m30s`, `2h`. A bare number is refused: its unit would be a guess. */
export function parseDuration(input: unknown): Parsed {
  const hint = `${show(input)} is not a duration (use e.g. 500ms, 30s, 5m or 1h)`;
  if (typeof input !== 'string') return bad(typeof input === 'number' && Number.isFinite(input) ? `${input} has no unit (write e.g. ${input}s)` : hint);
  const text = input.trim();
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    part.lastIndex = pos;
    const m = part.exec(text);
    if (!m) return bad(hint);
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = part.lastIndex;
  }
  if (text.length === 0) return bad(hint);
  return ok(Math.round(total));
}

/** Percentages: `70%` or `70` → 70. */
export function parsePercent(input: unknown): Parsed {
  const hint = `${show(input)} is not a percentage (use e.g. 70%)`;
  let value: number;
  if (typeof input === 'number') value = input;
  else if (typeof input === 'string') {
    const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(input.trim());
    if (!m) return bad(hint);
    value = Number(m[1]);
  } else return bad(hint);
  if (!(value > 0 && value <= 100)) return bad(`${show(input)} is outside 1%–100%`);
  return ok(value);
}

/** A count or a percentage of replicas, as `maxSurge: 1` or `maxSurge: 25%`. */
export type IntOrPercent = { count: number } | { percent: number };

export function parseIntOrPercent(input: unknown): { ok: true; value: IntOrPercent } | { ok: false; message: string } {
  if (typeof input === 'number' && Number.isInteger(input) && input >= 0) return { ok: true, value: { count: input } };
  if (typeof input === 'string') {
    const m = /^(\d+)%$/.exec(input.trim());
    if (m && Number(m[1]) <= 100) return { ok: true, value: { percent: Number(m[1]) } };
  }
  return { ok: false, message: `${show(input)} is neither a count nor a percentage (use e.g. 1 or 25%)` };
}

/** Resolves a count-or-percent against a replica count; surge rounds up, unavailability down (as Kubernetes does). */
export function resolveIntOrPercent(v: IntOrPercent, replicas: number, round: 'up' | 'down'): number {
  if ('count' in v) return v.count;
  const exact = (v.percent * replicas) / 100;
  return round === 'up' ? Math.ceil(exact) : Math.floor(exact);
}

// ---- printing back, for `get -o yaml`, `describe` and `diff` ----

export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

export function formatMemory(bytes: number): string {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
    const size = MEMORY_UNITS[unit]!;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}

export function formatIntOrPercent(v: IntOrPercent): number | string {
  return 'count' in v ? v.count : `${v.percent}%`;
}
