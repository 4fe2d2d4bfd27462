import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root (tests run compiled, from dist/test/...). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CARTE = path.join(ROOT, 'bin', 'carte');
export const fixture = (...parts: string[]) => path.join(ROOT, 'test', 'fixtures', ...parts);

/** A fresh temporary folder, removed after the current mocha suite. */
export function tempDir(prefix = 'carte-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
