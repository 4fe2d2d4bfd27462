// Host folders mounted into an instance, checked again when they are mounted.
// Admission (the server policy) looked at the path when the manifest was
// applied; by the time an instance is created (or re-created, on every
// restart) a folder may have been swapped for a symbolic link, by anyone who
// can write its parent — another container with a writable volume there, say.
// An outside test mounted /root that way. So the driver mounts a host path
// only by its real path (no link anywhere on the way), never one of the
// places no container may see, and a writable one only where the host's
// filesystem ignores setuid bits and device files: a container runs as root,
// and a setuid-root program or a device node it leaves in a writable host
// folder would be any local user's way to root.
//
// A window remains between this check and runc's mount (a swap in those
// microseconds); closing it needs mounting from an opened file descriptor.
import fs from 'node:fs';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import { collision, refusedLocations } from '../../policy/host-paths.js';

/** The mount options (field 6 of mountinfo) of the mount holding `p`: its longest mount point prefix. */
export function mountOptionsOf(p: string, mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): { mount: string; options: string[] } {
  let best = { mount: '/', options: [] as string[] };
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    const mount = f[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = mount === '/' || p === mount || p.startsWith(`${mount}/`);
    if (inside && mount.length >= best.mount.length) best = { mount, options: f[5]!.split(',') };
  }
  return best;
}

/** The real path to bind-mount for a host-path volume, or a DriverError saying why not. */
export function hostVolumeSource(instance: string, v: { hostPath: string; readOnly: boolean }, home: string): string {
  const fail = (cause: string, hint?: string) => new DriverError('mount a volume into', instance, cause, { hint });
  const asked = path.resolve(v.hostPath);
  let real: string;
  try {
    real = fs.realpathSync(asked);
  } catch {
    throw fail(`host path ${v.hostPath} does not exist`, 'create it, or fix spec.volumes[].hostPath');
  }
  if (real !== asked) {
    throw fail(`host path ${v.hostPath} leads to ${real} through a symbolic link; carte mounts host folders only by their real path`, 'write the real path in the manifest, if the server policy allows it');
  }
  const st = fs.statSync(real);
  if (!st.isDirectory() && !st.isFile()) throw fail(`host path ${v.hostPath} is not a folder or a regular file`);
  const hit = collision(real, refusedLocations(home));
  if (hit) {
    const how = hit.how === 'is' ? 'is' : hit.how === 'inside' ? 'is inside' : 'contains';
    throw fail(`host path ${v.hostPath} is never mounted into a container: it ${how} ${hit.location.path} (${hit.location.what})`);
  }
  if (!v.readOnly) {
    const { mount, options } = mountOptionsOf(real);
    const missing = ['nosuid', 'nodev'].filter((o) => !options.includes(o));
    if (missing.length) {
      throw fail(`host path ${v.hostPath} would be writable, but its filesystem (mounted at ${mount}) is not ${missing.join(',')}: a program made setuid-root or a device file left there by a container would be any local user's way to root`,
        `mount it with nosuid,nodev (e.g. "mount --bind ${real} ${real} && mount -o remount,bind,nosuid,nodev ${real}"), or make the volume read-only`);
    }
  }
  return real;
}
