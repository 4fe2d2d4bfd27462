// What the reconciler needs of the secret store, without knowing how it
// keeps secrets (src/secrets/vault.ts): the values of one version of a
// secret, by the name and digest desired state records.

/** A secret's values, key → bytes. Never logged, never written into state. */
export type SecretValues = Record<string, Buffer>;

export interface SecretReader {
  /** The values of `name` at version `digest` (state.secrets[name].digest); throws a CarteError if it cannot. */
  read(name: string, digest: string): Promise<SecretValues>;
}
