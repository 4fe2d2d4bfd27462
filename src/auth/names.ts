// Names of users and API tokens: short, plain, safe in a table, a log line,
// a URL and a shell (no quoting needed), and never mistaken for a token id.
import { UsageError } from '../errors.js';

export const AUTH_NAME = /^[a-z][a-z0-9._-]{0,31}$/;

/** Throws a usage error saying what is allowed, naming what was given. */
export function checkAuthName(what: 'user' | 'token', name: string): void {
  if (!AUTH_NAME.test(name)) {
    throw new UsageError(`"${name}" is not a valid ${what} name: use 1 to 32 characters, lowercase letters, digits, ".", "_" or "-", starting with a letter`);
  }
}
