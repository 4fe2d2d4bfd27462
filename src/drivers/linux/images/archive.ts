// `ADD file.tar DEST`: an archive from the context is unpacked into the
// image, and its entries must stay inside DEST: no absolute paths, no `..`,
// no links (hard or symbolic) out of the archive, no device nodes or FIFOs.
// node-tar already strips a leading `/`, skips `..` entries and unsupported
// types (preservePaths stays off), but it does so with a warning and carries
// on; a build refuses the archive instead, naming the entry, so an author
// never gets an image quietly missing files.
import path from 'node:path';
import * as tar from 'tar';

/** The parts of a tar entry that decide whether it may be unpacked. */
export interface ArchiveEntry {
  path: string;
  type: string;
  linkpath?: string;
}

const PLAIN = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'GNUDumpDir', 'SymbolicLink', 'Link']);

/** Why an entry may not be unpacked (completing "ARCHIVE holds …"), or null. */
export function archiveEntryRefusal(entry: ArchiveEntry): string | null {
  const p = entry.path.replaceAll('\\', '/');
  if (p.startsWith('/')) return `"${entry.path}", an absolute path`;
  if (p.split('/').includes('..')) return `"${entry.path}", which climbs out with ".."`;
  if (entry.type === 'CharacterDevice' || entry.type === 'BlockDevice') return `"${entry.path}", a device node`;
  if (entry.type === 'FIFO') return `"${entry.path}", a FIFO`;
  if (!PLAIN.has(entry.type)) return `"${entry.path}", a ${entry.type} entry, which a build does not unpack`;
  const link = entry.linkpath?.replaceAll('\\', '/') ?? '';
  if (entry.type === 'SymbolicLink') {
    // A relative link is resolved from its own folder; it must not climb above the archive's root.
    const to = path.posix.normalize(path.posix.join(path.posix.dirname(p), link));
    if (link.startsWith('/') || to === '..' || to.startsWith('../')) return `"${entry.path}", a link to ${entry.linkpath}, outside the archive`;
  }
  // A hard link names another entry of the archive, by its path from the root.
  if (entry.type === 'Link' && (link.startsWith('/') || link.split('/').includes('..'))) return `"${entry.path}", a hard link to ${entry.linkpath}, outside the archive`;
  return null;
}

/** Reads the archive's entry headers (not unpacking anything): the first refusal, or null. */
export async function scanArchive(file: string): Promise<string | null> {
  let refusal: string | null = null;
  await tar.t({
    file,
    onReadEntry: (entry) => {
      refusal ??= archiveEntryRefusal(entry);
    },
  });
  return refusal;
}

/**
 * Unpacks `file` into `cwd`, judging each entry again as it is read (the file
 * may have changed since the scan). Returns the first refusal, or null; on a
 * refusal the caller throws the partly unpacked folder away.
 */
export async function unpackArchive(file: string, cwd: string): Promise<string | null> {
  let refusal: string | null = null;
  await tar.x({
    file,
    cwd,
    preserveOwner: false,
    preservePaths: false,
    filter: (_p, entry) => {
      const why = 'type' in entry ? archiveEntryRefusal(entry) : null;
      refusal ??= why;
      return why === null && refusal === null;
    },
    // Anything else node-tar would skip with a warning (a path too deep, a bad header) is a refusal too.
    onwarn: (code, message) => {
      if (code !== 'TAR_ENTRY_INFO') refusal ??= `an entry node-tar would not unpack (${message})`;
    },
  });
  return refusal;
}
