// Registry credentials from `carte login`: one file, CARTE_HOME/registries/
// auth.age (folder 0700, file 0600), encrypted with age to the server's
// secret key, as secret values are (src/secrets/vault.ts). A password is
// never printed, never logged, and never put in a child's argv: skopeo gets
// it through an --authfile made for one call (see authfile.ts).
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError } from '../errors.js';
import { decrypt, encrypt, OpenError } from '../secrets/age.js';
import type { SecretKey } from '../secrets/key.js';
import { writeFileDurably } from '../util/durable-json-file.js';
import { acquireLock } from '../util/lock.js';

export interface RegistryCredential {
  username: string;
  password: string;
}

interface Payload {
  v: 1;
  auths: Record<string, RegistryCredential>;
}

export class RegistryCredentials {
  readonly dir: string;
  readonly file: string;

  /** `key` reads the server's key at each use (it may have been rotated). */
  constructor(home: string, private readonly key: () => Promise<SecretKey>) {
    this.dir = path.join(home, 'registries');
    this.file = path.join(this.dir, 'auth.age');
  }

  private async readAll(key?: SecretKey): Promise<Record<string, RegistryCredential>> {
    let ciphertext: Buffer;
    try {
      ciphertext = await fsp.readFile(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new CarteError('registry', `failed to read registry credentials: ${(e as Error).message}`);
    }
    const k = key ?? (await this.key());
    try {
      const payload = JSON.parse(Buffer.from(await decrypt(k.identities, ciphertext)).toString('utf8')) as Payload;
      return payload.auths;
    } catch (e) {
      if (!(e instanceof OpenError)) throw e;
      throw new CarteError('registry', e.reason === 'other-key'
        ? `failed to open registry credentials: ${this.file} was encrypted to a key that ${k.file} does not hold (log in again: carte login REGISTRY)`
        : `failed to open registry credentials: ${this.file} is damaged (${e.message}); log in again`);
    }
  }

  private async writeAll(auths: Record<string, RegistryCredential>, key?: SecretKey): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (!Object.keys(auths).length) {
      await fsp.rm(this.file, { force: true });
      return;
    }
    const k = key ?? (await this.key());
    const payload: Payload = { v: 1, auths };
    await writeFileDurably(this.file, await encrypt(k.recipient, Buffer.from(JSON.stringify(payload))));
  }

  /** Changes the file under a lock, so two logins at once both land. */
  private async update(change: (auths: Record<string, RegistryCredential>) => boolean): Promise<boolean> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const lock = await acquireLock(path.join(this.dir, 'auth.lock'));
    try {
      const auths = await this.readAll();
      const changed = change(auths);
      if (changed) await this.writeAll(auths);
      return changed;
    } finally {
      await lock.release();
    }
  }

  async get(registry: string): Promise<RegistryCredential | null> {
    return (await this.readAll())[registry] ?? null;
  }

  async registries(): Promise<string[]> {
    return Object.keys(await this.readAll()).sort();
  }

  async set(registry: string, credential: RegistryCredential): Promise<void> {
    await this.update((auths) => {
      auths[registry] = credential;
      return true;
    });
  }

  /** False when there was nothing stored for `registry`. */
  async remove(registry: string): Promise<boolean> {
    return this.update((auths) => {
      if (!(registry in auths)) return false;
      delete auths[registry];
      return true;
    });
  }

  /** After a key rotation: encrypted again to the new key (`both` opens the old file). */
  async reencrypt(both: SecretKey): Promise<void> {
    const auths = await this.readAll(both);
    if (Object.keys(auths).length) await this.writeAll(auths, both);
  }
}
