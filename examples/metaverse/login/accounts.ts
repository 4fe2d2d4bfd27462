// Accounts: what a valid sign-up looks like, and password hashing with
// scrypt (salted, parameters stored with the hash so they can be raised later).
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { HttpError } from '../lib/http.js';

export interface Credentials { name: string; password: string }

export interface StoredAccount {
  name: string;
  createdAt: string;
  kdf: { alg: 'scrypt'; N: number; r: number; p: number; salt: string; hash: string };
}

export const NAME_RULE = /^[a-z0-9][a-z0-9_-]{2,31}$/;

export function parseCredentials(body: Record<string, unknown>): Credentials {
  const { name, password } = body;
  if (typeof name !== 'string' || !NAME_RULE.test(name)) {
    throw new HttpError(400, 'bad_name', 'name must be 3 to 32 characters: lowercase letters, digits, "_" or "-", starting with a letter or digit');
  }
  if (typeof password !== 'string' || password.length < 8 || password.length > 128) {
    throw new HttpError(400, 'bad_password', 'password must be a string of 8 to 128 characters');
  }
  return { name, password };
}

function derive(password: string, salt: Buffer, p: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r }, (e, key) => (e ? reject(e) : resolve(key)));
  });
}

export async function hashPassword(name: string, password: string, N: number, now = new Date()): Promise<StoredAccount> {
  const salt = randomBytes(16);
  const params = { N, r: 8, p: 1 };
  const hash = await derive(password, salt, params);
  return { name, createdAt: now.toISOString(), kdf: { alg: 'scrypt', ...params, salt: salt.toString('base64'), hash: hash.toString('base64') } };
}

export async function checkPassword(account: StoredAccount, password: string): Promise<boolean> {
  const want = Buffer.from(account.kdf.hash, 'base64');
  const got = await derive(password, Buffer.from(account.kdf.salt, 'base64'), account.kdf);
  return got.length === want.length && timingSafeEqual(got, want);
}
