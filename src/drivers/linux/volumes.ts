// Named volumes: folders under CARTE_HOME/volumes, each owned by the source
// that first used it (recorded in the registry, src/util/volume-owners.ts).
// Admission already refuses a manifest naming another source's volume; this
// is defence in depth for state written before that check, or a bug in it:
// a student's folder or Git manifest must never mount the administrator's data.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import { readVolumeOwners, writeVolumeOwners } from '../../util/volume-owners.js';
import type { InstanceSpec } from '../driver.js';

// Creates run concurrently; the registry's read-modify-write must not (a lost
// update would leave a volume ownerless, claimable by the next source).
let registryTurn: Promise<unknown> = Promise.resolve();

/**
 * Checks every named volume of `spec` against the registry, then makes the
 * missing folders and records `spec.source` as the owner of those without
 * one. Nothing is made or recorded if any volume is another source's. A
 * volume with a folder but no owner was made by an older carte: its first
 * user claims it, so data made before the upgrade is kept.
 */
export async function claimVolumes(volumesDir: string, spec: InstanceSpec): Promise<void> {
  const names = [...new Set(spec.spec.volumes.flatMap((v) => (v.kind === 'named' ? [v.name] : [])))];
  if (!names.length) return;
  const turn = registryTurn.then(() => claim(volumesDir, spec, names));
  registryTurn = turn.catch(() => undefined);
  await turn;
}

async function claim(volumesDir: string, spec: InstanceSpec, names: string[]): Promise<void> {
  const owners = await readVolumeOwners(volumesDir).catch((e: Error) => {
    throw new DriverError('read the volume owners for', `instance ${spec.name}`, e.message, { cause: e });
  });
  for (const name of names) {
    const owner = owners[name];
    if (owner !== undefined && owner !== spec.source) {
      throw new DriverError(`mount volume "${name}" into`, `instance ${spec.name}`,
        `the volume belongs to source ${owner}, not ${spec.source} (volumes are private to the source that made them)`);
    }
  }
  let claimed = false;
  for (const name of names) {
    await fsp.mkdir(path.join(volumesDir, name), { recursive: true, mode: 0o755 });
    if (owners[name] === undefined) {
      owners[name] = spec.source;
      claimed = true;
    }
  }
  if (claimed) await writeVolumeOwners(volumesDir, owners);
}
