// Secret values at rest: one age-encrypted file per version of a secret,
// CARTE_HOME/secrets/<name>.<digest>.age (folder 0700, files 0600), the
// digest being the sha256 of the encrypted bytes. The state file records
// only each secret's name, keys and current digest, so a write is: the new
// file first (durably), then the state that names it; a carte killed in
// between leaves a file no state names, which the next secret write removes.
// Files are replaced, never rewritten.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError } from '../errors.js';
import { writeFileDurably } from '../util/durable-json-file.js';
import type { SecretReader, SecretValues } from '../model/secrets.js';
import { decrypt, digestOf, encrypt, OpenError } from './age.js';
import { loadSecretKey, type SecretKey } from './key.js';

export type { SecretValues } from '../model/secrets.js';

const FILE = /^([a-z][-a-z0-9]*)\.([0-9a-f]{16})\.age$/;

interface Payload {
  v: 1;
  secret: string;
  /** Key → base64 of the value's bytes. */
  data: Record<string, string>;
}

export class SecretVault implements SecretReader {
  readonly dir: string;

  constructor(home: string, readonly keyFile: string) {
    this.dir = path.join(home, 'secrets');
  }

  /** The server's key, read (and checked) at each use, made on first use: a rotated key counts at once. */
  key(): Promise<SecretKey> {
    return loadSecretKey(this.keyFile, { create: true });
  }

  fileOf(name: string, digest: string): string {
    return path.join(this.dir, `${name}.${digest}.age`);
  }

  /** Encrypts and stores a version of `name`; returns its digest. */
  async write(name: string, values: SecretValues, key?: SecretKey): Promise<string> {
    const k = key ?? (await this.key());
    const payload: Payload = { v: 1, secret: name, data: Object.fromEntries(Object.entries(values).map(([kk, v]) => [kk, v.toString('base64')])) };
    const ciphertext = await encrypt(k.recipient, Buffer.from(JSON.stringify(payload)));
    const digest = digestOf(ciphertext);
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Temp file (0600, a name of its own), fsync, rename, fsync of the folder: a crash leaves the old set of files or the new one.
    await writeFileDurably(this.fileOf(name, digest), ciphertext);
    return digest;
  }

  async read(name: string, digest: string, key?: SecretKey): Promise<SecretValues> {
    const file = this.fileOf(name, digest);
    let ciphertext: Buffer;
    try {
      ciphertext = await fsp.readFile(file);
    } catch (e) {
      throw new CarteError('secret', `failed to read secret "${name}": ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? `${file} is missing` : (e as Error).message}`);
    }
    const k = key ?? (await this.key());
    let plain: Uint8Array;
    try {
      plain = await decrypt(k.identities, ciphertext);
    } catch (e) {
      if (!(e instanceof OpenError)) throw e;
      throw new CarteError('secret', e.reason === 'other-key'
        ? `failed to open secret "${name}": ${file} was encrypted to a key that ${k.file} does not hold (was the key file replaced?)`
        : `failed to open secret "${name}": ${file} is damaged (${e.message})`);
    }
    const payload = JSON.parse(Buffer.from(plain).toString('utf8')) as Payload;
    if (payload.secret !== name) throw new CarteError('secret', `failed to open secret "${name}": ${file} holds secret "${payload.secret}"`);
    return Object.fromEntries(Object.entries(payload.data).map(([kk, v]) => [kk, Buffer.from(v, 'base64')]));
  }

  /**
   * Removes every version file not in `keep` (`name.digest` pairs), and
   * temporary files of killed writers. Only under the store's writers' lock:
   * then no other writer has a file written and not yet named in the state.
   */
  async prune(keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const f of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      const m = FILE.exec(f);
      if ((m && !keep.has(`${m[1]}.${m[2]}`)) || f.endsWith('.tmp')) {
        await fsp.rm(path.join(this.dir, f), { force: true });
        removed.push(f);
      }
    }
    return removed;
  }
}

/** Whether two sets of values are equal, key for key, byte for byte. */
export function sameValues(a: SecretValues, b: SecretValues): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k]!.equals(b[k]!));
}

