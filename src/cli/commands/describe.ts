import { stringify } from 'yaml';
import { NotFoundError } from '../../errors.js';
import { instanceRecords, serviceStatuses } from '../../api/status.js';
import { connectDaemon } from '../../daemon/client.js';
import { toManifest } from '../../schema/canonical.js';
import type { ScalerStatus } from '../../scaler/scaler.js';
import { serviceObject, type StateData } from '../../store/state.js';
import { allowedFrom, DEFAULT_ACCESS_RULES, describeAllowed, type AccessRulesOf } from '../../model/access.js';
import { rulesFor } from '../../policy/policy.js';
import type { Context } from '../context.js';
import { age, formatLabels, table, write } from '../output.js';
import { parseTarget } from './get.js';
import { REVISION_HEAD, revisionRows } from './history.js';
import { storedService } from '../../api/lookup.js';

/**
 * Who may connect to the service (allowFrom, or the server policy's
 * default for its source: the policy is read only when the manifest does
 * not say, and a policy that cannot be read is said, not thrown).
 */
async function allowedFromText(ctx: Context, data: StateData, name: string): Promise<string> {
  const services = Object.values(data.services).map((x) => ({ name: x.name, source: x.source }));
  const s = data.services[name]!;
  const svc = { name, source: s.source, spec: s.revision.spec };
  let rules: AccessRulesOf = () => DEFAULT_ACCESS_RULES;
  if (!s.revision.spec.allowFrom) {
    try {
      const policy = await ctx.policy();
      rules = (source) => (source === null ? policy.rules : rulesFor(policy, source).rules).network;
    } catch (e) {
      return `unknown: the server policy could not be read (${(e as Error).message})`;
    }
  }
  return describeAllowed(svc, allowedFrom(svc, services, rules));
}

const indent = (text: string, by = '  ') => text.trimEnd().split('\n').map((l) => `${by}${l}`).join('\n');

export async function describe(ctx: Context, words: string[]): Promise<void> {
  const { name } = parseTarget(words, 'describe');
  if (name === undefined) throw new NotFoundError('describe: name a service, e.g. "carte describe service login"');
  const data = await ctx.store().read();
  const s = storedService(data, name);
  if (!s) throw new NotFoundError(`service "${name}" not found`);
  const now = ctx.now();
  const r = s.revision;
  const events = data.events.filter((e) => e.object === `service/${name}`).slice(-10);
  const status = serviceStatuses(data, now.getTime()).find((st) => st.name === name)!;
  const instances = Object.entries(instanceRecords(data)).filter(([, r]) => r.service === name).sort(([a], [b]) => (a < b ? -1 : 1));
  const a = r.spec.autoscale;
  const autoscale: string[] = [];
  if (a) {
    autoscale.push(`Autoscale:  ${a.min}–${a.max} replicas; now ${status.desired}${s.autoscaled ? `, set ${age(s.autoscaled.at, now)} ago: ${s.autoscaled.reason}` : ' (no decision yet)'}`);
    // The live recommendation comes from the daemon's scaler (in memory), when a daemon runs.
    const daemon = await connectDaemon(ctx.home);
    const live = daemon ? (await daemon.get<Record<string, ScalerStatus>>('/v1/scaler').catch(() => ({})) as Record<string, ScalerStatus>)[name] : undefined;
    if (live) autoscale.push(`            recommendation ${live.decision.recommendation}: ${live.decision.reason}`);
  }
  const out = [
    `Name:       ${s.name}`,
    `Status:     ${status.phase}, ${status.ready}/${status.desired} ready${status.reason ? `: ${status.reason}` : ''}`,
    `Labels:     ${formatLabels(r.labels)}`,
    `Source:     ${s.source}`,
    `Allowed from: ${await allowedFromText(ctx, data, name)}`,
    `Revision:   ${r.revision} (spec ${r.hash}, template ${r.templateHash})`,
    `Origin:     ${r.origin ?? '-'}${r.commit ? ` at commit ${r.commit}` : ''}`,
    `Created:    ${s.createdAt} (${age(s.createdAt, now)} ago)`,
    `Updated:    ${s.updatedAt} (${age(s.updatedAt, now)} ago)`,
    ...autoscale,
    'Spec:',
    indent(stringify(toManifest(serviceObject(s)).spec, { lineWidth: 0 })),
    'Instances:',
    instances.length ? indent(table(['NAME', 'READY', 'RESTARTS', 'LAST CHECK ERROR'], instances.map(([n, r]) => [n, r.ready ? 'yes' : r.unhealthy ? 'unhealthy' : 'no', String(r.restarts), r.lastError ?? '-']))) : '  <none>',
    'Revisions:',
    indent(table(REVISION_HEAD, revisionRows(name, s.history, now))),
    'Events:',
    events.length ? indent(table(['AGE', 'TYPE', 'REASON', 'MESSAGE'], events.map((e) => [age(e.at, now), e.type, e.reason, e.message]))) : '  <none>',
  ];
  write(out.join('\n'));
}
