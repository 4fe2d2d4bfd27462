// `carte policy show`: the server policy in effect, every default written out.
import { stringify } from 'yaml';
import { rulesFor, rulesToInput } from '../../policy/policy.js';
import type { Context } from '../context.js';
import { write } from '../output.js';

export interface PolicyShowOptions {
  /** Show the rules that apply to this source id (`cli`, `folder:/abs/path`, `git:URL#branch:path`). */
  source?: string;
}

const yaml = (data: unknown) => stringify(data, { lineWidth: 0 }).trimEnd();

export async function show(ctx: Context, opts: PolicyShowOptions): Promise<void> {
  const policy = await ctx.policy();
  const where = await ctx.policyLocation();
  const from = policy.file ?? `built-in defaults (no ${where.file})`;
  if (opts.source !== undefined) {
    const { rules, section } = rulesFor(policy, opts.source);
    const which = section === null ? 'the top level (no sources section matches)' : `sources[${section}] (match: ${JSON.stringify(policy.sources[section]!.match)})`;
    write(`# server policy: ${from}\n# for source ${opts.source}: ${which}\n${yaml(rulesToInput(rules))}`);
    return;
  }
  const data = {
    ...rulesToInput(policy.rules),
    sources: policy.sources.map((s) => ({ match: s.match, ...rulesToInput(s.rules) })),
  };
  write(`# server policy: ${from}\n${yaml(data)}`);
}
