// The `registries:` section of the daemon config file (`carte daemon
// --config FILE`): registries reached over plain HTTP although not on a
// loopback address. Checked with located sentences, as the `alerts:` section
// (src/alerts/config.ts). Parsing is pure; loadRegistriesConfig reads the file.
import fs from 'node:fs';
import { Type } from '@sinclair/typebox';
import { UsageError, type ManifestProblem } from '../errors.js';
import { DaemonConfigError } from '../alerts/config.js';
import { readYamlDocuments } from '../schema/load.js';
import { schemaValidator } from '../schema/validate.js';

export interface RegistriesConfig {
  /** `host:port` (or `host`) of registries pulled from and pushed to over plain HTTP. */
  insecure: string[];
}

const HOST_PORT = '^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]{1,5})?$';

export const RegistriesSchema = Type.Object({
  insecure: Type.Optional(Type.Array(Type.String({ pattern: HOST_PORT, 'x-hint': 'a registry\'s host:port, e.g. registry.lan:5000' }))),
}, { additionalProperties: false });

/** Only this section is this module's: the rest of the file is read elsewhere. */
const validate = schemaValidator(Type.Object({ registries: Type.Optional(RegistriesSchema) }));

export function parseRegistriesConfig(text: string, display: string): { config: RegistriesConfig | null; problems: ManifestProblem[] } {
  const read = readYamlDocuments({ display, text });
  if (read.problems.length) return { config: null, problems: read.problems };
  const first = read.docs[0];
  if (!first || first.data === null || typeof first.data !== 'object' || Array.isArray(first.data)) return { config: { insecure: [] }, problems: [] };
  // `registries:` with everything under it commented out is no section, not an error.
  const { registries, ...rest } = first.data as { registries?: unknown };
  const problems = validate(registries === null ? rest : first.data, first.locator);
  if (problems.length) {
    const at = (p: ManifestProblem) => (p.position ? p.position.line * 1e6 + p.position.column : 0);
    return { config: null, problems: [...problems].sort((a, b) => at(a) - at(b)) };
  }
  const section = (first.data as { registries?: { insecure?: string[] } | null }).registries;
  return { config: { insecure: [...new Set(section?.insecure ?? [])] }, problems: [] };
}

/** Reads the registries section of the daemon config file (none without one). */
export function loadRegistriesConfig(file: string | undefined): RegistriesConfig {
  if (file === undefined) return { insecure: [] };
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`daemon: cannot read config ${file}: ${(e as Error).message}`);
  }
  const { config, problems } = parseRegistriesConfig(text, file);
  if (!config) throw new DaemonConfigError(file, problems);
  return config;
}
