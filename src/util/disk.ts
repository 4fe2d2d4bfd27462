// Where a path lives on disk and how much room is left there, for error
// messages that say which filesystem is full rather than just "ENOSPC".
import fs from 'node:fs';
import path from 'node:path';

export interface Space {
  /** Bytes an unprivileged writer may still use (statfs f_bavail × f_bsize). */
  freeBytes: number;
  /** The mount point holding the path (from /proc/self/mountinfo), or the path itself when unknown. */
  mount: string;
}

/** The mount point holding `p`: the longest mount point that is a prefix of its real path. */
export function mountOf(p: string): string {
  let real = p;
  try {
    real = fs.realpathSync(p);
  } catch {
    // A path that cannot be resolved is reported as given.
  }
  let best = '/';
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return real;
  }
  for (const line of text.split('\n')) {
    // Field 5 is the mount point; spaces and the like are octal escapes (\040).
    const field = line.split(' ')[4];
    if (!field) continue;
    const mount = field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = mount === '/' || real === mount || real.startsWith(mount.endsWith('/') ? mount : `${mount}/`);
    if (inside && mount.length >= best.length) best = mount;
  }
  return best;
}

/** Free space where `p` lives; null when statfs itself fails (then there is nothing better to say). */
export function spaceOf(p: string): Space | null {
  const dir = fs.existsSync(p) && fs.statSync(p).isDirectory() ? p : path.dirname(p);
  try {
    const s = fs.statfsSync(dir);
    return { freeBytes: Number(s.bavail) * Number(s.bsize), mount: mountOf(dir) };
  } catch {
    return null;
  }
}
