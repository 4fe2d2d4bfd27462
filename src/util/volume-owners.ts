// Who owns each named volume: the source (`cli`, `folder:…`, `git:…`) that
// first made it. Volumes outlive the services that use them, so ownership is
// kept beside them, in CARTE_HOME/volumes/.owners.json, not in the services'
// state. The file sits next to the volume folders, never inside one (a
// container sees its volume's folder), and a volume name cannot be
// `.owners.json` (names are lowercase labels, see service-schema.ts).
// The Linux driver writes it when it makes or claims a volume; admission reads
// it to refuse a manifest naming another source's volume before anything runs.
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeFileDurably } from './durable-json-file.js';

export const VOLUME_OWNERS_FILE = '.owners.json';

/** Volume name → owning source. */
export type VolumeOwners = Record<string, string>;

/** Where named volumes live: CARTE_HOME/volumes. */
export const volumesDirOf = (home: string) => path.join(home, 'volumes');

export const volumeOwnersFile = (volumesDir: string) => path.join(volumesDir, VOLUME_OWNERS_FILE);

/** The registry; empty when there is none yet (a new server, or volumes made by an older carte). */
export async function readVolumeOwners(volumesDir: string): Promise<VolumeOwners> {
  let text: string;
  try {
    text = await fs.readFile(volumeOwnersFile(volumesDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  const parsed = JSON.parse(text) as unknown;
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${volumeOwnersFile(volumesDir)} is not a JSON object`);
  const owners: VolumeOwners = {};
  for (const [name, owner] of Object.entries(parsed)) if (typeof owner === 'string') owners[name] = owner;
  return owners;
}

/** Replaces the registry atomically (temp file, fsync, rename, fsync of the folder). */
export async function writeVolumeOwners(volumesDir: string, owners: VolumeOwners): Promise<void> {
  await writeFileDurably(volumeOwnersFile(volumesDir), JSON.stringify(owners, null, 2) + '\n');
}
