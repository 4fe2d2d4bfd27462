// Secrets as files: each secret volume of an instance is a tmpfs of its own,
// sized to its files, holding one file per key (mode 0400 unless the
// manifest says otherwise, owned by the instance's user), made read-only and
// bind-mounted read-only at its mountPath. Nothing of it is ever on disk.
//
// Like host volumes (host-volumes.ts), the tmpfs is staged in the instance's
// own folder (root-only) and unmounted from the host once `runc create` has
// returned: from then on only the container's mount namespace holds it, and
// the kernel frees it when the container ends. A carte killed in between
// leaves it mounted under the instance's folder, where remove() and gc
// unmount it before deleting any file (so its pages are freed, not written).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import type { SecretVolume } from '../driver.js';
import type { Runner } from './exec.js';

/** Where an instance's secret volumes are staged: inside its own folder, so remove() and gc unmount them. */
export const SECRETS_FOLDER = 'secret-volumes';

const PAGE = 4096;

/** Bytes a tmpfs needs for these files: whole pages per file, one per folder, and a little room. */
export function tmpfsSize(files: SecretVolume['files']): number {
  const dirs = new Set(files.map((f) => path.posix.dirname(f.path)).filter((d) => d !== '.'));
  return files.reduce((n, f) => n + Math.ceil(Math.max(1, f.data.length) / PAGE) * PAGE, 0) + (dirs.size + 4) * PAGE;
}

/**
 * Mode of the folders: the owner may list and enter them; group and others
 * only when the files' mode gives them read (so `mode: "0440"` reaches a group).
 */
export function folderMode(fileMode: number): number {
  return 0o500 | (fileMode & 0o040 ? 0o050 : 0) | (fileMode & 0o004 ? 0o005 : 0);
}

/**
 * Mounts a tmpfs at `target`, writes the volume's files into it owned by
 * `uid:gid`, and remounts it read-only. Returns `target`.
 */
export async function stageSecretVolume(runner: Runner, instance: string, v: SecretVolume, target: string, owner: { uid: number; gid: number }): Promise<string> {
  await fsp.mkdir(target, { recursive: true, mode: 0o700 });
  const mode = v.files[0]?.mode ?? 0o400;
  const options = ['nosuid', 'nodev', 'noexec', `size=${tmpfsSize(v.files)}`, `mode=${folderMode(mode).toString(8)}`, `uid=${owner.uid}`, `gid=${owner.gid}`];
  const mount = (opts: string[]) => runner.run('mount', ['-t', 'tmpfs', '-o', opts.join(','), `carte-secret-${v.name}`, target], { step: 'mount the secret volume of', resource: instance });
  // noswap (Linux 6.4): the pages never go to a swap device either. Older kernels refuse the option.
  await mount([...options, 'noswap']).catch(() => mount(options));
  try {
    for (const f of v.files) {
      const file = path.join(target, f.path);
      // Checked in the manifest already (no "..", relative); checked again: a file outside the tmpfs would be on disk.
      if (!file.startsWith(`${target}/`)) throw new DriverError('mount the secret volume of', instance, `item path "${f.path}" leaves the volume`);
      for (let dir = path.dirname(file); dir !== target && !fs.existsSync(dir); dir = path.dirname(dir)) {
        await fsp.mkdir(dir, { recursive: true });
      }
      for (let dir = path.dirname(file); dir.startsWith(`${target}/`); dir = path.dirname(dir)) {
        await fsp.chown(dir, owner.uid, owner.gid);
        await fsp.chmod(dir, folderMode(f.mode));
      }
      await fsp.writeFile(file, f.data, { mode: 0o600, flag: 'wx' });
      await fsp.chown(file, owner.uid, owner.gid);
      await fsp.chmod(file, f.mode);
    }
    await runner.run('mount', ['-o', 'remount,ro', target], { step: 'make read-only the secret volume of', resource: instance });
  } catch (e) {
    await runner.run('umount', [target], { step: 'unmount the secret volume of', resource: instance, okCodes: [32] }).catch(() => undefined);
    throw e;
  }
  return target;
}
