// `carte image import FILE.tar NAME:TAG`: a plain rootfs tarball (e.g. from
// debootstrap or `tar -C rootfs -c .`) becomes a one-layer image.
import fsp from 'node:fs/promises';
import * as tar from 'tar';
import { CarteError } from '../../../errors.js';
import { EMPTY_CONFIG, normalizeRef, type ImageRecord, type ImageStore } from './store.js';

export async function importRootfs(images: ImageStore, file: string, tag: string): Promise<ImageRecord> {
  const ref = normalizeRef(tag);
  await fsp.access(file).catch(() => {
    throw new CarteError('image', `failed to import ${file}: no such file`, { exitCode: 2 });
  });
  const staged = await images.stagingDir();
  try {
    // preserveOwner keeps the archive's uids (we are root); devices are skipped: /dev is a tmpfs in containers.
    await tar.x({ file, cwd: staged, preserveOwner: true, filter: (_p, entry) => !('type' in entry) || !['CharacterDevice', 'BlockDevice', 'FIFO'].includes(String(entry.type)) });
  } catch (e) {
    await fsp.rm(staged, { recursive: true, force: true });
    throw new CarteError('image', `failed to import ${file}: not a readable tar archive (${(e as Error).message})`, { cause: e });
  }
  const layer = await images.addLayer(staged);
  return images.save({ ...EMPTY_CONFIG, cmd: ['/bin/sh'] }, [layer.digest], ref);
}
