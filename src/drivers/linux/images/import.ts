// `carte image import FILE.tar NAME:TAG`: a plain rootfs tarball (e.g. from
// debootstrap or `tar -C rootfs -c .`) becomes a one-layer image.
import fsp from 'node:fs/promises';
import * as tar from 'tar';
import { CarteError } from '../../../errors.js';
import { placeSymlink, type DeferredLink } from './oci-layer.js';
import { normalizeEntry } from './oci-spec.js';
import { EMPTY_CONFIG, normalizeRef, type ImageRecord, type ImageStore } from './store.js';

/**
 * Imports; `onLeftOut` hears each entry that was not unpacked and why (a
 * device node, a path climbing out with `..`, an absolute path made
 * relative): an importer sees what the image is missing, never silently.
 */
export async function importRootfs(images: ImageStore, file: string, tag: string, onLeftOut: (line: string) => void = () => {}): Promise<ImageRecord> {
  const ref = normalizeRef(tag);
  await fsp.access(file).catch(() => {
    throw new CarteError('image', `failed to import ${file}: no such file`, { exitCode: 2 });
  });
  const staged = await images.stagingDir();
  // Symbolic links are made afterwards, targets as written (node-tar would make `/bin/busybox` relative, a broken link).
  const links = new Map<string, DeferredLink>();
  try {
    // preserveOwner keeps the archive's uids (we are root); devices are skipped: /dev is a tmpfs in containers.
    await tar.x({
      file, cwd: staged, preserveOwner: true,
      filter: (p, entry) => {
        const type = 'type' in entry ? String(entry.type) : '';
        const rel = normalizeEntry(p);
        links.delete(rel);
        if (type === 'SymbolicLink' && 'linkpath' in entry && !p.replaceAll('\\', '/').split('/').includes('..')) {
          links.set(rel, { target: String(entry.linkpath ?? ''), uid: entry.uid ?? 0, gid: entry.gid ?? 0 });
          return false;
        }
        if (!['CharacterDevice', 'BlockDevice', 'FIFO'].includes(type)) return true;
        onLeftOut(`${p}: a ${type === 'FIFO' ? 'FIFO' : 'device node'} (a container's /dev is its own)`);
        return false;
      },
      // node-tar strips a leading "/" and skips entries climbing out with ".." (preservePaths is off); it says so here.
      onwarn: (_code: string, why: string, data: unknown) => {
        const d = data as { path?: string; entry?: { path?: string } } | undefined;
        const entry = d?.path ?? d?.entry?.path ?? '?';
        onLeftOut(why.startsWith('stripping /') ? `${entry}: an absolute path, unpacked at ${entry.replace(/^\/+/, '')} instead` : `${entry}: ${why}`);
      },
    });
  } catch (e) {
    await fsp.rm(staged, { recursive: true, force: true });
    throw new CarteError('image', `failed to import ${file}: not a readable tar archive (${(e as Error).message})`, { cause: e });
  }
  try {
    for (const [rel, link] of links) {
      const why = await placeSymlink(staged, rel, link);
      if (why !== null) onLeftOut(`${rel}: a symbolic link left out: the archive holds ${why}`);
    }
  } catch (e) {
    await fsp.rm(staged, { recursive: true, force: true });
    throw e;
  }
  const layer = await images.addLayer(staged);
  return images.save({ ...EMPTY_CONFIG, cmd: ['/bin/sh'] }, [layer.digest], ref);
}
