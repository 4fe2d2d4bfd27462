// The one door to the age format (age-encryption.org/v1, the `age-encryption`
// package by age's author): X25519 keys, encryption to a recipient, the
// armored text form. No cryptography of carte's own: this module only names
// what the library does and sorts its failures into what a person can act on.
import { createHash } from 'node:crypto';
import * as age from 'age-encryption';

/** A new private key, `AGE-SECRET-KEY-1…` (X25519, as `age-keygen` makes: the age CLI can read carte's files). */
export function generateIdentity(): Promise<string> {
  return age.generateX25519Identity();
}

/** The public key (`age1…`) of a private key. */
export function recipientOf(identity: string): Promise<string> {
  return age.identityToRecipient(identity);
}

const RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** Whether a text is an X25519 age public key. */
export function isRecipient(text: string): boolean {
  return RECIPIENT.test(text);
}

export async function encrypt(recipient: string, plaintext: Uint8Array): Promise<Uint8Array> {
  const e = new age.Encrypter();
  e.addRecipient(recipient);
  return e.encrypt(plaintext);
}

/** Why a ciphertext did not open. */
export type OpenFailure =
  /** No key given matches the file's recipient: sealed for another key (or its header was changed). */
  | 'other-key'
  /** Not an age file, or changed after it was made (a failed authentication tag). */
  | 'damaged';

export class OpenError extends Error {
  constructor(readonly reason: OpenFailure, message: string) {
    super(message);
  }
}

/** Decrypts with any of `identities`; an OpenError says why it could not. */
export async function decrypt(identities: readonly string[], ciphertext: Uint8Array): Promise<Uint8Array> {
  const d = new age.Decrypter();
  for (const id of identities) d.addIdentity(id);
  try {
    return await d.decrypt(ciphertext);
  } catch (e) {
    const message = (e as Error).message;
    throw new OpenError(/no identity matched/.test(message) ? 'other-key' : 'damaged', message);
  }
}

/** The armored (PEM-like, `-----BEGIN AGE ENCRYPTED FILE-----`) text of a ciphertext. */
export function armor(ciphertext: Uint8Array): string {
  return age.armor.encode(ciphertext);
}

/** The ciphertext of an armored text; an OpenError ('damaged') if it is not one. */
export function dearmor(text: string): Uint8Array {
  try {
    return age.armor.decode(text);
  } catch (e) {
    throw new OpenError('damaged', (e as Error).message);
  }
}

/** sha256 of bytes, 16 hex: names a version of an encrypted file (it says nothing of the plaintext). */
export function digestOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}
