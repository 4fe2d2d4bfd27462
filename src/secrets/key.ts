// The server's secret key: an age identity in a root-only file outside
// CARTE_HOME (default /etc/carte/secret.key), so a copy of the state folder
// (a backup, a student who can read it by mistake) holds only ciphertext.
// Created on first use, mode 0600; a file that others may read or that root
// does not own is refused rather than used, as ssh refuses a private key
// that is not private.
//
// The format is age-keygen's: comment lines, then `AGE-SECRET-KEY-1…` lines.
// Several keys may be listed (during a rotation): every one opens, the last
// one seals.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError } from '../errors.js';
import { generateIdentity, recipientOf } from './age.js';

export const DEFAULT_SECRET_KEY = '/etc/carte/secret.key';

/** Where the key is: the --secret-key flag, else $CARTE_SECRET_KEY, else /etc/carte/secret.key. */
export function secretKeyPath(flag?: string): string {
  return path.resolve(flag ?? (process.env.CARTE_SECRET_KEY || DEFAULT_SECRET_KEY));
}

export interface SecretKey {
  file: string;
  /** Every private key listed; the last one is current. */
  identities: string[];
  /** The public key of the current one: what values are sealed to. */
  recipient: string;
}

const fail = (message: string) => new CarteError('secret', message);

/**
 * Reads the key file, checking it first: a regular file (not a link), owned
 * by root (`ownerUid`, for tests), with no permission for group or others.
 * With `create`, a missing file is made (and its folder, mode 0700).
 */
export async function loadSecretKey(file: string, opts: { create?: boolean; ownerUid?: number } = {}): Promise<SecretKey> {
  const owner = opts.ownerUid ?? 0;
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && opts.create) {
      await createKeyFile(file);
      return loadSecretKey(file, { ...opts, create: false });
    }
    if (code === 'ENOENT') throw fail(`no secret key at ${file}: "carte secret set" makes one on first use (or point --secret-key or CARTE_SECRET_KEY at yours)`);
    if (code === 'ELOOP') throw fail(`secret key ${file} is a symbolic link: carte reads the key only from a regular file (copy it there, mode 0600)`);
    if (code === 'EACCES') throw fail(`cannot read secret key ${file}: permission denied (secrets need root: run carte as root)`);
    throw fail(`cannot read secret key ${file}: ${(e as Error).message}`);
  }
  let text: string;
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw fail(`secret key ${file} is not a regular file`);
    if (st.uid !== owner) throw fail(`secret key ${file} is owned by uid ${st.uid}, not ${owner === 0 ? 'root' : `uid ${owner}`}: refusing to use it (chown root:root ${file})`);
    if ((st.mode & 0o077) !== 0) {
      throw fail(`secret key ${file} is open to group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): refusing to use it (chmod 600 ${file}, and think about who may have read it)`);
    }
    text = await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
  const identities = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (!identities.length) throw fail(`secret key ${file} holds no key (an AGE-SECRET-KEY-1… line)`);
  let recipient = '';
  for (const id of identities) {
    try {
      if (!id.startsWith('AGE-SECRET-KEY-1')) throw new Error('not an age X25519 key');
      recipient = await recipientOf(id);
    } catch {
      throw fail(`secret key ${file}: line ${lineOf(text, id)} is not an age private key (AGE-SECRET-KEY-1…)`);
    }
  }
  return { file, identities, recipient };
}

function lineOf(text: string, content: string): number {
  return text.split('\n').findIndex((l) => l.trim() === content) + 1;
}

/** The key file's text: age-keygen's format, the current key last. */
export async function keyFileText(identities: readonly string[], now = new Date()): Promise<string> {
  const recipient = await recipientOf(identities.at(-1)!);
  return [`# created: ${now.toISOString()}`, `# public key: ${recipient}`, ...identities].join('\n') + '\n';
}

/**
 * Makes a new key file, atomically and without replacing one that appears
 * meanwhile (another carte making it at the same moment wins; both then use
 * its key): written to a temporary file, fsync'd, then hard-linked into place.
 */
async function createKeyFile(file: string): Promise<void> {
  try {
    await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fail(`cannot create the folder of secret key ${file}: ${(e as Error).message}`);
  }
  const text = await keyFileText([await generateIdentity()]);
  await writeKeyFile(file, text, { replace: false });
}

/** Writes the key file durably: temp file (0600, fsync), then link (new) or rename (replace), then fsync of the folder. */
export async function writeKeyFile(file: string, text: string, opts: { replace: boolean }): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const h = await fsp.open(tmp, 'wx', 0o600);
    try {
      await h.writeFile(text);
      await h.sync();
    } finally {
      await h.close();
    }
    if (opts.replace) await fsp.rename(tmp, file);
    else {
      await fsp.link(tmp, file).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
    }
  } catch (e) {
    throw fail(`cannot write secret key ${file}: ${(e as Error).message}`);
  } finally {
    await fsp.rm(tmp, { force: true });
  }
  const dir = await fsp.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
