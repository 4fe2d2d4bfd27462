// Who owns a bridge. Instances of one CARTE_HOME share a bridge; two homes on
// one bridge would share its subnet's addresses and each home's gc would
// believe the other's veths and leases were its leftovers. So a bridge is one
// home's, marked by the interface alias `carte:<home path>` (any interface
// may carry an alias of up to 255 bytes; `ip -d link` and
// /sys/class/net/BR/ifalias show it, and it lives and dies with the bridge).
//
// carte creates the bridge itself, marked, before the CNI bridge plugin runs
// (the plugin takes an existing bridge as it is). A bridge whose owning home
// folder is gone, or that carries no mark (made by an older carte, or by the
// plugin before this existed), is adopted: nobody else can be using it as a
// carte home.
import fs from 'node:fs';
import { DriverError } from '../../errors.js';
import type { Runner } from './exec.js';

const MARK = 'carte:';

/**
 * The home that owns a bridge: undefined when there is no such interface,
 * null when it carries no carte mark, else the home's path.
 */
export function bridgeOwner(bridge: string): string | null | undefined {
  let alias: string;
  try {
    alias = fs.readFileSync(`/sys/class/net/${bridge}/ifalias`, 'utf8').trim();
  } catch {
    return undefined;
  }
  return alias.startsWith(MARK) ? alias.slice(MARK.length) : null;
}

/** Creates the bridge marked as `home`'s, or adopts an unowned one; refuses one that another live home owns. */
export async function claimBridge(runner: Runner, bridge: string, home: string): Promise<void> {
  let owner = bridgeOwner(bridge);
  if (owner === home) return;
  if (owner && fs.existsSync(owner)) {
    throw new DriverError('use', `bridge ${bridge}`, `bridge ${bridge} belongs to CARTE_HOME ${owner}; give this home its own: set CARTE_BRIDGE and CARTE_SUBNET`);
  }
  if (owner === undefined) {
    // Exit code 2 is "File exists": another process made it a moment ago; its mark is checked below.
    await runner.run('ip', ['link', 'add', 'name', bridge, 'type', 'bridge'], { step: 'create', resource: `bridge ${bridge}`, okCodes: [2] });
    owner = bridgeOwner(bridge);
    if (owner && owner !== home && fs.existsSync(owner)) {
      throw new DriverError('use', `bridge ${bridge}`, `bridge ${bridge} belongs to CARTE_HOME ${owner}; give this home its own: set CARTE_BRIDGE and CARTE_SUBNET`);
    }
  }
  await runner.run('ip', ['link', 'set', 'dev', bridge, 'alias', `${MARK}${home}`], { step: 'mark', resource: `bridge ${bridge}` });
}
