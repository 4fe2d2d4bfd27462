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
// No window between that check and the mount (issue 13): the folder is opened
// first (O_NOFOLLOW), every check runs on what the descriptor holds (its path
// read back from /proc/self/fd, its mount found by mnt_id), and carte
// bind-mounts *the descriptor* onto a staging point in the instance's own
// folder (root-only), which runc then mounts. A swap after the open changes
// nothing: the staging mount is the object that was checked.
//
// Why staging, not `source: /proc/<carte pid>/fd/N` in config.json: runc init
// mounts from inside the container's new mount namespace, and the kernel
// refuses a bind of a mount from another namespace (EINVAL; measured with
// runc 1.1.5, kernel 6.18). And `mount --no-canonicalize`: without it
// util-linux resolves /proc/PID/fd/N back to a path and mounts that path,
// the very race this closes (seen with strace, util-linux 2.38.1).
//
// The staging mount lives only until `runc create` returns (the container has
// its own mount by then); a carte killed in between leaves it under the
// instance's folder, where remove() and gc unmount it before deleting files.
import fs from 'node:fs';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import { collision, refusedLocations } from '../../policy/host-paths.js';
import { faultPoint } from '../../util/fault.js';
import type { Runner } from './exec.js';

/**
 * Reached after a host path is opened and checked, before it is mounted. Not
 * one of CREATE_FAULT_POINTS (only instances with a host volume reach it);
 * tests use it to swap the folder there (onFaultPoint).
 */
export const HOST_VOLUME_PINNED = 'create:host-volume-pinned';

/** Where an instance's host volumes are staged: inside its own folder, so remove() and gc unmount them. */
export const STAGING_FOLDER = 'host-volumes';

const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The mount point and mount options (fields 5 and 6 of mountinfo) of the mount with this id (field 1); null if absent. */
export function mountById(id: number, mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): { mount: string; options: string[] } | null {
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length >= 6 && Number(f[0]) === id) return { mount: unescape(f[4]!), options: f[5]!.split(',') };
  }
  return null;
}

/** The id of the mount an open file lives in (`mnt_id:` in /proc/self/fdinfo/FD). */
export function mountIdOf(fd: number): number {
  const m = /^mnt_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  if (!m) throw new Error(`no mnt_id in /proc/self/fdinfo/${fd}`);
  return Number(m[1]);
}

/** A host path held open: what is mounted is this object, whatever its path leads to later. Close `fd` when done. */
export interface PinnedHostPath {
  fd: number;
  /** Its path, read back from /proc/self/fd: equal to the asked path when pinned. */
  path: string;
  directory: boolean;
  dev: number;
  ino: number;
}

/** Opens a host-path volume's folder or file and checks what was opened; a DriverError says why not. */
export function pinHostPath(instance: string, v: { hostPath: string; readOnly: boolean }, home: string): PinnedHostPath {
  const fail = (cause: string, hint?: string) => new DriverError('mount a volume into', instance, cause, { hint });
  const asked = path.resolve(v.hostPath);
  let real: string;
  try {
    real = fs.realpathSync(asked);
  } catch {
    throw fail(`host path ${v.hostPath} does not exist`, 'create it, or fix spec.volumes[].hostPath');
  }
  // Said first, by the path, for the message; the descriptor's checks below are the ones that count.
  if (real !== asked) {
    throw fail(`host path ${v.hostPath} leads to ${real} through a symbolic link; carte mounts host folders only by their real path`, 'write the real path in the manifest, if the server policy allows it');
  }
  const changed = (now: string) => fail(`host path ${v.hostPath} changed while carte checked it (${now}); carte mounts host folders only by their real path`);
  const notFolderOrFile = () => fail(`host path ${v.hostPath} is not a folder or a regular file`);
  const before = fs.lstatSync(asked, { throwIfNoEntry: false });
  if (!before) throw changed('it is gone');
  if (!before.isDirectory() && !before.isFile()) throw notFolderOrFile();
  // No O_PATH in Node: a real open, so never of a device or FIFO. O_DIRECTORY
  // makes the kernel refuse anything else; a file swapped for a FIFO or device
  // after the lstat opens without blocking or side effects and fails fstat.
  const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK, O_NOCTTY } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(asked, O_RDONLY | O_NOFOLLOW | (before.isDirectory() ? O_DIRECTORY : O_NONBLOCK | O_NOCTTY));
  } catch (e) {
    throw changed(`opening it: ${(e as NodeJS.ErrnoException).code}`);
  }
  try {
    // From here on, only the descriptor: its path as the kernel knows it (a
    // link anywhere on the way would show here), its type, its mount.
    const pinned = fs.readlinkSync(`/proc/self/fd/${fd}`);
    if (pinned !== asked) throw changed(`it now leads to ${pinned}`);
    const st = fs.fstatSync(fd);
    if (!st.isDirectory() && !st.isFile()) throw notFolderOrFile();
    const hit = collision(pinned, refusedLocations(home));
    if (hit) {
      const how = hit.how === 'is' ? 'is' : hit.how === 'inside' ? 'is inside' : 'contains';
      throw fail(`host path ${v.hostPath} is never mounted into a container: it ${how} ${hit.location.path} (${hit.location.what})`);
    }
    if (!v.readOnly) {
      const holder = mountById(mountIdOf(fd));
      if (!holder) throw fail(`host path ${v.hostPath}: the mount holding it is not in /proc/self/mountinfo`);
      const missing = ['nosuid', 'nodev'].filter((o) => !holder.options.includes(o));
      if (missing.length) {
        throw fail(`host path ${v.hostPath} would be writable, but its filesystem (mounted at ${holder.mount}) is not ${missing.join(',')}: a program made setuid-root or a device file left there by a container would be any local user's way to root`,
          `mount it with nosuid,nodev (e.g. "mount --bind ${pinned} ${pinned} && mount -o remount,bind,nosuid,nodev ${pinned}"), or make the volume read-only`);
      }
    }
    return { fd, path: pinned, directory: st.isDirectory(), dev: st.dev, ino: st.ino };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/**
 * Pins a host-path volume, checks it, and bind-mounts what was checked onto
 * `staging` (made here, inside the instance's folder): the path to give runc.
 */
export async function stageHostVolume(runner: Runner, instance: string, v: { hostPath: string; readOnly: boolean }, home: string, staging: string): Promise<string> {
  const pin = pinHostPath(instance, v, home);
  try {
    faultPoint(HOST_VOLUME_PINNED);
    fs.mkdirSync(path.dirname(staging), { recursive: true, mode: 0o700 });
    if (pin.directory) fs.mkdirSync(staging, { mode: 0o700 });
    else fs.writeFileSync(staging, '', { flag: 'wx', mode: 0o600 });
    // A plain bind, not rbind: mounts below the folder were never checked (nosuid,nodev), and
    // runc's read-only remount covers only the top mount, so they stay out of the container.
    // /proc/<carte's pid>: mount(8) is a child, and the descriptor is carte's (O_CLOEXEC, not inherited).
    await runner.run('mount', ['--no-canonicalize', '--bind', `/proc/${process.pid}/fd/${pin.fd}`, staging], { step: 'stage a host volume of', resource: instance });
    const st = fs.statSync(staging);
    if (st.dev !== pin.dev || st.ino !== pin.ino) {
      throw new DriverError('mount a volume into', instance, `the staging mount of host path ${v.hostPath} (${staging}) is not the folder carte checked`);
    }
    return staging;
  } finally {
    fs.closeSync(pin.fd);
  }
}
