// Finding a stored service by a name someone typed (a URL, the command line):
// services are a plain object keyed by name, so "__proto__", "constructor" or
// "toString" would find Object.prototype's members without an own-key check.
import { NAME_PATTERN } from '../schema/service-schema.js';
import type { StateData, StoredService } from '../store/state.js';

/** The manifest rule for service names (what a route accepts before any lookup). */
export const SERVICE_NAME = new RegExp(NAME_PATTERN);

/** The stored service of that name, or undefined: own keys only. Pure. */
export function storedService(data: Pick<StateData, 'services'>, name: string): StoredService | undefined {
  return Object.hasOwn(data.services, name) ? data.services[name] : undefined;
}
