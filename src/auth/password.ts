// Password hashes: scrypt (node:crypto) with a random 16-byte salt, the
// parameters written with the hash so they can be raised later without
// breaking stored users: "scrypt$N$r$p$<salt b64>$<hash b64>".
// N = 2^15, r = 8 costs 32 MiB and about 0.1 s per try on a small server
// (OWASP's minimum for scrypt is N = 2^17 with r = 8 at p = 1 or equivalent
// work; 2^15 keeps a Raspberry Pi's login under a second).
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { UsageError } from '../errors.js';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LEN = 32;
/** Long passwords cost scrypt nothing more, but a bound keeps request bodies and stdin small. */
export const PASSWORD_MAX = 1024;
export const PASSWORD_MIN = 8;

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  // maxmem above 128·N·r, or node refuses N = 2^15, r = 8 (exactly its 32 MiB default).
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r };
  return new Promise((resolve, reject) => scryptCb(password, salt, KEY_LEN, opts, (e, key) => (e ? reject(e) : resolve(key))));
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** The parameters of a stored hash, or null when it is not one carte wrote. */
export function parseHash(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | null {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return null;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // N a power of two above 1 (scrypt's rule), and bounded: a hand-edited file must not make a login take minutes.
  if (!(N > 1 && (N & (N - 1)) === 0 && N <= 2 ** 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16)) return null;
  const key = Buffer.from(m[5]!, 'base64');
  if (key.length !== KEY_LEN) return null;
  return { params: { N, r, p }, salt: Buffer.from(m[4]!, 'base64'), key };
}

/** Whether `password` matches `stored`, in time independent of where they differ. */
export async function verifyHash(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return false;
  const key = await scrypt(password, h.salt, h.params);
  return timingSafeEqual(key, h.key);
}

/** A password to print once: 24 characters of base64url (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/** Throws a usage error unless `password` is one carte accepts (never echoing it). */
export function checkPassword(password: string): void {
  if ([...password].length < PASSWORD_MIN) throw new UsageError(`the password is too short: use at least ${PASSWORD_MIN} characters (or pipe nothing in to have one generated)`);
  if (Buffer.byteLength(password) > PASSWORD_MAX) throw new UsageError(`the password is too long: use at most ${PASSWORD_MAX} bytes`);
  if (/[\n\r\0]/.test(password)) throw new UsageError('the password holds a line break or NUL: give it as one line');
}
