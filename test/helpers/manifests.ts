// Builders so each test states only what differs from a plain valid Service.
import { stringify } from 'yaml';
import { parseManifests, type LoadedSealedSecret, type LoadedService } from '../../src/schema/load.js';
import type { ManifestProblem } from '../../src/errors.js';
import { formatProblem } from '../../src/errors.js';

export function serviceDoc(name: string, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'carte/v1', kind: 'Service', metadata: { name, ...metadata }, spec: { image: `test/${name}:1`, ...spec } };
}

export function yaml(...docs: Record<string, unknown>[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}

/** Parses texts given as { 'file.yaml': text }, in order. */
export function parse(files: Record<string, string>): { services: LoadedService[]; sealedSecrets: LoadedSealedSecret[]; problems: ManifestProblem[] } {
  return parseManifests(Object.entries(files).map(([display, text]) => ({ display, baseDir: '/srv/app', text })));
}

/** Problems as the CLI prints them. */
export function problemLines(files: Record<string, string>): string[] {
  return parse(files).problems.map(formatProblem);
}

/** Services from texts that must be valid. */
export function services(files: Record<string, string>): LoadedService[] {
  const r = parse(files);
  if (r.problems.length) throw new Error(`fixture is invalid:\n${r.problems.map(formatProblem).join('\n')}`);
  return r.services;
}
