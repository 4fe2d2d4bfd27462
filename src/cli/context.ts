// What every command gets: where state lives, the store, a logger, a clock,
// and the server policy (read only by the commands that admit manifests).
import path from 'node:path';
import { cliLogger, type Logger } from '../log.js';
import type { AdmissionContext } from '../policy/admit.js';
import type { PolicyLocation } from '../policy/load.js';
import type { ServerPolicy } from '../policy/policy.js';
import { DEFAULT_HOME, Store } from '../store/store.js';
import { secretKeyPath } from '../secrets/key.js';
import { SecretVault } from '../secrets/vault.js';

export interface GlobalOptions {
  home?: string;
  debug?: boolean;
  /** --policy FILE (else $CARTE_POLICY, else /etc/carte/policy.yaml). */
  policy?: string;
  /** --secret-key FILE (else $CARTE_SECRET_KEY, else /etc/carte/secret.key). */
  secretKey?: string;
}

export interface Context {
  home: string;
  debug: boolean;
  log: Logger;
  now: () => Date;
  store: () => Store;
  /** Where the policy is read from, and the policy itself (read and checked on first use; throws its located problems). */
  policyLocation: () => Promise<PolicyLocation>;
  policy: () => Promise<ServerPolicy>;
  /** The policy with this machine's facts: what apply and diff admit manifests under. */
  admission: () => Promise<AdmissionContext>;
  /** Where secret values are kept (CARTE_HOME/secrets) and the key that opens them (read on use). */
  vault: () => SecretVault;
}

export function makeContext(opts: GlobalOptions): Context {
  const home = path.resolve(opts.home ?? process.env.CARTE_HOME ?? DEFAULT_HOME);
  let store: Store | undefined;
  let log: Logger | undefined;
  let policy: Promise<ServerPolicy> | undefined;
  let vault: SecretVault | undefined;
  // Imported on use: compiling the policy schema is a cost `carte get` must not pay.
  const policyLocation = async () => (await import('../policy/load.js')).policyLocation(opts.policy);
  const loadPolicy = async () => (await import('../policy/load.js')).loadPolicy(await policyLocation());
  return {
    home,
    debug: opts.debug === true,
    // Made on first use: most commands never log, and the pretty printer costs startup time.
    get log() {
      return (log ??= cliLogger(opts.debug ? 'debug' : 'warn'));
    },
    now: () => new Date(),
    // A recovered state is worth a line on stderr: the user learns why their last change may be gone.
    store: () => (store ??= Store.open(home, { onRecover: (info) => process.stderr.write(`warning: ${info.message}\n`) })),
    policyLocation,
    policy: () => (policy ??= loadPolicy()),
    vault: () => (vault ??= new SecretVault(home, secretKeyPath(opts.secretKey))),
    admission: async () => ({ policy: await (policy ??= loadPolicy()), home, realpath: (await import('../policy/facts.js')).hostRealPath }),
  };
}
