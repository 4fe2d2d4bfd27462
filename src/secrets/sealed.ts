// Sealed secrets: secret values that may sit in Git. `carte secret seal`
// encrypts each value to the server's public key (anyone may, with
// `--public-key`, no root needed); only the server's private key opens it.
// Each value is sealed with the secret's name and key inside, so a sealed
// value copied under another name or key is refused rather than opened
// there (what Bitnami's sealed-secrets calls strict scope). Sealed with
// `--source`, the source's id is inside too, and the value opens only in
// that source: a copy committed to another team's repository is refused.
import { stringify } from 'yaml';
import type { ManifestProblem } from '../errors.js';
import type { LoadedSealedSecret } from '../schema/load.js';
import { API_VERSION } from '../schema/service-schema.js';
import { armor, dearmor, decrypt, encrypt, OpenError } from './age.js';
import type { SecretKey } from './key.js';
import type { SecretValues } from './vault.js';

interface SealedPayload {
  v: 1;
  secret: string;
  key: string;
  /** The only source that may open it (`git:…`, `folder:…`, `cli`); absent: any source. */
  source?: string;
  /** base64 of the value's bytes. */
  value: string;
}

/** The armored ciphertext of one value, sealed for `secret`'s `key`. */
export async function sealValue(recipient: string, secret: string, key: string, value: Buffer, source?: string): Promise<string> {
  const payload: SealedPayload = { v: 1, secret, key, ...(source !== undefined ? { source } : {}), value: value.toString('base64') };
  return armor(await encrypt(recipient, Buffer.from(JSON.stringify(payload))));
}

/** A SealedSecret document for `carte secret seal`, keys in name order. */
export async function sealedSecretYaml(recipient: string, name: string, values: SecretValues, source?: string): Promise<string> {
  const data: Record<string, string> = {};
  for (const key of Object.keys(values).sort()) data[key] = await sealValue(recipient, name, key, values[key]!, source);
  return stringify({ apiVersion: API_VERSION, kind: 'SealedSecret', metadata: { name }, spec: { data } }, { lineWidth: 0 });
}

/** A SealedSecret opened on the server: its values, and where it was written. */
export interface OpenedSecret {
  name: string;
  values: SecretValues;
  origin: string;
  locate: LoadedSealedSecret['locate'];
}

/**
 * Opens every value of every sealed secret with the server's key. A value
 * that does not open (sealed for another key, changed, sealed for another
 * name) is a problem located at that value; the caller refuses the set.
 */
export async function openSealedSecrets(sealed: readonly LoadedSealedSecret[], serverKey: SecretKey, source: string): Promise<{ secrets: OpenedSecret[]; problems: ManifestProblem[] }> {
  const secrets: OpenedSecret[] = [];
  const problems: ManifestProblem[] = [];
  for (const s of sealed) {
    const values: SecretValues = {};
    let ok = true;
    for (const [key, text] of Object.entries(s.data)) {
      const problem = (message: string) => {
        ok = false;
        problems.push({ position: s.locate(['spec', 'data', key]), path: `spec.data.${key}`, message });
      };
      let payload: SealedPayload;
      try {
        const plain = await decrypt(serverKey.identities, dearmor(text));
        payload = JSON.parse(Buffer.from(plain).toString('utf8')) as SealedPayload;
      } catch (e) {
        if (!(e instanceof OpenError) && !(e instanceof SyntaxError)) throw e;
        problem(e instanceof OpenError && e.reason === 'other-key'
          ? `cannot be opened with this server's key: it was sealed for another public key, or changed since (seal it again: carte secret seal ${s.name} --public-key ${serverKey.recipient})`
          : `is not a value sealed by "carte secret seal", or was changed after sealing (seal it again: carte secret seal ${s.name})`);
        continue;
      }
      if (payload.secret !== s.name || payload.key !== key) {
        problem(`was sealed for key "${payload.key}" of secret "${payload.secret}", not for key "${key}" of secret "${s.name}": a sealed value opens only where it was sealed for (seal it again: carte secret seal ${s.name})`);
        continue;
      }
      if (payload.source !== undefined && payload.source !== source) {
        problem(`was sealed for source "${payload.source}", not for this one ("${source}"): a sealed value opens only in the source it was sealed for (seal it again: carte secret seal ${s.name} --source '${source}')`);
        continue;
      }
      values[key] = Buffer.from(payload.value, 'base64');
    }
    if (ok) secrets.push({ name: s.name, values, origin: s.origin, locate: s.locate });
  }
  return { secrets, problems };
}
