// Without a user namespace, uid N in a container is uid N on the host: a
// host account with that uid can signal the instance's processes, and (same
// uid and gid) trace them and read /proc/<pid>/environ and
// /proc/<pid>/root — its environment, its secrets, and a way into its
// network, past allowFrom. So an instance never runs as a host account's
// uid, root aside (only root can reach root's processes anyway).
import { DriverError } from '../../errors.js';
import type { Runner } from './exec.js';

/** The first field of a passwd line (`name:x:uid:…`), or null for an empty answer. */
export function accountName(getentLine: string): string | null {
  const name = getentLine.split('\n')[0]!.split(':')[0]!.trim();
  return name || null;
}

/**
 * The host account that has `uid` (through NSS: /etc/passwd, LDAP, sssd…), or null.
 * getent exits 2 when there is none.
 */
export async function hostAccountOf(runner: Runner, uid: number, resource: string): Promise<string | null> {
  const r = await runner.run('getent', ['passwd', String(uid)], { step: 'look up the host account of', resource, okCodes: [2], timeoutMs: 10_000 });
  return r.code === 0 ? accountName(r.stdout) : null;
}

/** Refuses a uid other than 0 that a host account has. */
export async function refuseHostAccount(runner: Runner, uid: number, what: { step: string; resource: string }): Promise<void> {
  if (uid === 0) return;
  const account = await hostAccountOf(runner, uid, `uid ${uid}`);
  if (account === null) return;
  throw new DriverError(what.step, what.resource,
    `it would run as uid ${uid}, which is the host account "${account}": that account could signal and trace its processes and read its environment and secrets`,
    { hint: 'run it as a uid no host account has, e.g. spec.user: "10001:10001" or USER 10001:10001 in its Cartefile; see docs/security.md, "Container users and host accounts"' });
}
