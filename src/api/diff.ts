// Field-by-field difference between two versions of a service, computed on
// the manifest form (human units, defaults shown) so `128Mi → 256Mi` reads
// the way the user wrote it and a default never shows up as a change.
import { stringify } from 'yaml';
import { toManifest } from '../schema/canonical.js';
import { formatPath, type PathSegment } from '../schema/locate.js';
import type { ServiceObject } from '../schema/types.js';

export type FieldChange =
  | { op: 'add'; path: string; to: unknown }
  | { op: 'remove'; path: string; from: unknown }
  | { op: 'change'; path: string; from: unknown; to: unknown };

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function walk(a: unknown, b: unknown, at: PathSegment[], out: FieldChange[]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    // In the new version's field order, removed fields last.
    for (const key of new Set([...Object.keys(b), ...Object.keys(a)])) {
      if (!(key in b)) out.push({ op: 'remove', path: formatPath([...at, key]), from: a[key] });
      else if (!(key in a)) out.push({ op: 'add', path: formatPath([...at, key]), to: b[key] });
      else walk(a[key], b[key], [...at, key], out);
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && isListOfObjects(a) && isListOfObjects(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= b.length) out.push({ op: 'remove', path: formatPath([...at, i]), from: a[i] });
      else if (i >= a.length) out.push({ op: 'add', path: formatPath([...at, i]), to: b[i] });
      else walk(a[i], b[i], [...at, i], out);
    }
    return;
  }
  // Scalars and lists of scalars (command, dependsOn) compare as one value.
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ op: 'change', path: formatPath(at), from: a, to: b });
}

function isListOfObjects(list: unknown[]): boolean {
  return list.every(isPlainObject);
}

// A missing side compares as empty sections, so a created or deleted
// service lists its fields one per line rather than as one huge value.
function comparable(obj: ServiceObject | null): Record<string, unknown> {
  if (!obj) return { metadata: {}, spec: {} };
  const { metadata, spec } = toManifest(obj);
  return { metadata, spec };
}

/** Changes from `before` to `after`; a null side means the service is created or deleted. */
export function diffServices(before: ServiceObject | null, after: ServiceObject | null): FieldChange[] {
  const out: FieldChange[] = [];
  walk(comparable(before), comparable(after), [], out);
  return out;
}

/** One value in flow style on one line: `8080`, `"1"`, `{ name: data, mountPath: /data }`. */
export function inlineValue(v: unknown): string {
  return stringify(v, { collectionStyle: 'flow', lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' }).trim();
}

export function formatChange(c: FieldChange): string {
  switch (c.op) {
    case 'add':
      return `+ ${c.path}: ${inlineValue(c.to)}`;
    case 'remove':
      return `- ${c.path}: ${inlineValue(c.from)}`;
    case 'change':
      return `~ ${c.path}: ${inlineValue(c.from)} → ${inlineValue(c.to)}`;
  }
}
