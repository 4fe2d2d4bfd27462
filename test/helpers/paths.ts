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

/** Every regular file below `dir` on its own filesystem: what is on the disk (mounts below it, such as a rootfs or a tmpfs, are not). */
export function filesOnDisk(dir: string, dev = fs.statSync(dir).dev): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    const st = fs.lstatSync(p);
    if (st.dev !== dev) continue;
    if (st.isDirectory()) out.push(...filesOnDisk(p, dev));
    else if (st.isFile()) out.push(p);
  }
  return out;
}
