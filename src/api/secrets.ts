// `carte secret set`, `rm` and `list`: each one store update under the
// writers' lock, the encrypted version file written inside it before the
// state that names it (src/secrets/vault.ts). No value is ever returned,
// printed or recorded here; events name secrets and keys only.
import { ConflictError, NotFoundError } from '../errors.js';
import path from 'node:path';
import { RegistryCredentials } from '../registry/credentials.js';
import type { SecretVault, SecretValues } from '../secrets/vault.js';
import { sameValues } from '../secrets/vault.js';
import { recordEvent, type StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import { acquireLock } from '../util/lock.js';
import { generateIdentity } from '../secrets/age.js';
import { keyFileText, writeKeyFile } from '../secrets/key.js';
import { changedKeysOf } from './apply.js';
import { commitSecret, describeUsers, missingKeys, usableByOf, usersOf, versionsNamed } from './secret-state.js';

export interface SetSecretResult {
  action: 'created' | 'updated' | 'unchanged';
  /** Services rolled because the value changed. */
  rolled: string[];
}

/**
 * Stores `values` as secret `name` (every key: a set replaces the whole
 * secret). Refused when another source owns it, or when it would lose a key
 * a service uses (unless `force`). An unchanged value writes nothing.
 */
export async function setSecret(store: Store, vault: SecretVault, name: string, values: SecretValues, opts: { force?: boolean; now?: Date; usableBy?: string[] } = {}): Promise<SetSecretResult> {
  const now = opts.now ?? new Date();
  return store.update(async (data) => {
    const key = await vault.key();
    const stored = data.secrets?.[name];
    if (stored && stored.source !== 'cli') {
      throw new ConflictError(`secret "${name}" belongs to source ${stored.source} (a SealedSecret at ${stored.origin ?? '?'}); change it there, or remove it first with "carte secret rm ${name}"`);
    }
    const old = stored ? await vault.read(name, stored.digest, key).catch(() => null) : null;
    if (old && sameValues(old, values)) {
      // The same values with a new grant: only who may use it changes (nothing rolls).
      const grant = opts.usableBy;
      if (!grant || usableByOf(stored!).join('\n') === grant.join('\n')) return { action: 'unchanged', rolled: [] };
      stored!.usableBy = grant;
      recordEvent(data, now, { type: 'Normal', object: `secret/${name}`, reason: 'Updated', message: `usable by ${grant.join(', ')} (was ${usableByOf({ ...stored!, usableBy: undefined }).join(', ')})` });
      return { action: 'updated', rolled: [] };
    }
    if (!opts.force) {
      const lost = usersOf(data, name)
        .map((u) => ({ ...u, missing: missingKeys(u.uses, Object.keys(values)) }))
        .filter((u) => u.missing.length);
      if (lost.length) {
        throw new ConflictError(`secret "${name}" would lose ${lost.map((u) => `key ${u.missing.map((k) => `"${k}"`).join(', ')}, which service ${u.service} uses`).join('; ')}: set it with ${lost.flatMap((u) => u.missing).length > 1 ? 'those keys' : 'that key'} too, or add --force (new instances will then fail to start)`);
      }
    }
    await vault.prune(versionsNamed(data));
    const digest = await vault.write(name, values, key);
    const rolled = commitSecret(data, {
      name, keys: Object.keys(values), digest, source: 'cli', origin: null, commit: null, changedKeys: old ? changedKeysOf(old, values) : null, usableBy: opts.usableBy,
    }, now);
    return { action: stored ? 'updated' : 'created', rolled };
  });
}

/**
 * Says which sources' manifests may use secret `name` (replacing the grant);
 * the values do not change and nothing rolls. Narrowing a grant does not stop
 * services already using it (they were admitted under the old one).
 */
export async function grantSecret(store: Store, name: string, usableBy: string[], now = new Date()): Promise<'updated' | 'unchanged'> {
  return store.update((data) => {
    const stored = data.secrets?.[name];
    if (!stored) throw new NotFoundError(`secret "${name}" not found`);
    const before = usableByOf(stored);
    if (before.join('\n') === usableBy.join('\n')) return 'unchanged';
    stored.usableBy = usableBy;
    recordEvent(data, now, { type: 'Normal', object: `secret/${name}`, reason: 'Updated', message: `usable by ${usableBy.join(', ')} (was ${before.join(', ')})` });
    return 'updated';
  });
}

/**
 * Removes a secret from desired state (and its encrypted files). Refused
 * while a stored service uses it, unless `force`: that service's running
 * instances keep what they were given, its new ones fail to start.
 */
export async function removeSecret(store: Store, vault: SecretVault, name: string, opts: { force?: boolean; now?: Date } = {}): Promise<{ users: string[] }> {
  const now = opts.now ?? new Date();
  const users = await store.update((data) => {
    const stored = data.secrets?.[name];
    if (!stored) throw new NotFoundError(`secret "${name}" not found`);
    const using = usersOf(data, name);
    if (using.length && !opts.force) {
      const one = using.length === 1;
      throw new ConflictError(`secret "${name}" is used by ${one ? 'service' : 'services'} ${describeUsers(using)}: change ${one ? 'that service' : 'those services'} first, or add --force (${one ? 'its' : 'their'} new instances will then fail to start)`);
    }
    delete data.secrets![name];
    const from = stored.source !== 'cli' ? `; it came from ${stored.source}, which puts it back on its next sync unless its SealedSecret is gone` : '';
    recordEvent(data, now, {
      type: using.length ? 'Warning' : 'Normal', object: `secret/${name}`, reason: 'Removed',
      message: `removed by cli${using.length ? ` while ${describeUsers(using)} use it` : ''}${from}`,
    });
    return using.map((u) => u.service);
  });
  // Its version files go now, under the writers' lock (no writer has an unnamed file in flight then).
  const lock = await acquireLock(store.lockPath);
  try {
    await vault.prune(versionsNamed(await store.read()));
  } finally {
    await lock.release();
  }
  return { users };
}

export interface SecretRow {
  name: string;
  keys: string[];
  source: string;
  /** Sources (or patterns) whose manifests may use it. */
  usableBy: string[];
  updatedAt: string;
  users: string[];
}

/** Every secret: name, keys, source, when updated, which services use it. Never a value. */
export function listSecrets(data: Readonly<StateData>): SecretRow[] {
  return Object.values(data.secrets ?? {})
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((s) => ({ name: s.name, keys: s.keys, source: s.source, usableBy: usableByOf(s), updatedAt: s.updatedAt, users: usersOf(data, s.name).map((u) => u.service) }));
}

/**
 * Replaces the server's key: a new one is added to the key file (the last
 * one seals, every one opens), every stored secret is encrypted again to it
 * (same values: nothing rolls), then the old keys are dropped from the file
 * unless `keepOld` (so SealedSecrets in Git sealed to the old public key
 * still open until they are sealed again). A carte killed at any step leaves
 * a key file that opens every file the state names.
 */
export async function rotateKey(store: Store, vault: SecretVault, opts: { keepOld?: boolean; now?: Date } = {}): Promise<{ recipient: string; secrets: string[]; dropped: number }> {
  const now = opts.now ?? new Date();
  const old = await vault.key();
  const fresh = await generateIdentity();
  await writeKeyFile(vault.keyFile, await keyFileText([...old.identities, fresh], now), { replace: true });
  const both = await vault.key();
  // Registry logins are encrypted to the same key (src/registry/credentials.ts).
  await new RegistryCredentials(path.dirname(vault.dir), () => vault.key()).reencrypt(both);
  const secrets = await store.update(async (data) => {
    await vault.prune(versionsNamed(data));
    const names: string[] = [];
    for (const s of Object.values(data.secrets ?? {})) {
      s.digest = await vault.write(s.name, await vault.read(s.name, s.digest, both), both);
      names.push(s.name);
    }
    recordEvent(data, now, { type: 'Normal', object: 'secret', reason: 'KeyRotated', message: `new server key ${both.recipient}; ${names.length} secrets encrypted to it${opts.keepOld ? '; the old keys still open' : ''}` });
    return names.sort();
  });
  if (!opts.keepOld) await writeKeyFile(vault.keyFile, await keyFileText([fresh], now), { replace: true });
  const lock = await acquireLock(store.lockPath);
  try {
    await vault.prune(versionsNamed(await store.read()));
  } finally {
    await lock.release();
  }
  return { recipient: both.recipient, secrets, dropped: opts.keepOld ? 0 : old.identities.length };
}
