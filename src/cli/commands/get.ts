import { stringify } from 'yaml';
import { NotFoundError, UsageError } from '../../errors.js';
import { toManifest } from '../../schema/canonical.js';
import { formatCpu, formatMemory } from '../../schema/units.js';
import { serviceStatuses } from '../../api/status.js';
import { serviceObject, type StoredService } from '../../store/state.js';
import type { Context } from '../context.js';
import { age, table, write } from '../output.js';

export const OUTPUT_FORMATS = ['wide', 'json', 'yaml'] as const;
export const SERVICE_WORDS = ['services', 'service', 'svc'];
export const INSTANCE_WORDS = ['instances', 'instance', 'inst'];

export interface GetOptions {
  output?: string;
}

/** `get`'s positional words: [TYPE] [NAME], where TYPE defaults to services. */
export function parseTarget(words: string[], command: string): { name: string | undefined } {
  const [first, second, ...rest] = words;
  if (rest.length) throw new UsageError(`${command}: too many arguments: ${words.join(' ')}`);
  if (first === undefined) return { name: undefined };
  if (SERVICE_WORDS.includes(first)) return { name: second };
  if (second !== undefined) throw new UsageError(`${command}: unknown resource type "${first}" (known: services, instances)`);
  return { name: first };
}

/** A stored service as a document: the manifest (re-appliable) plus a read-only status. */
export function serviceDocument(s: StoredService): Record<string, unknown> {
  const r = s.revision;
  return {
    ...toManifest(serviceObject(s)),
    status: {
      revision: r.revision, hash: r.hash, templateHash: r.templateHash, source: s.source,
      origin: r.origin, commit: r.commit, createdAt: s.createdAt, updatedAt: s.updatedAt,
    },
  };
}

function ports(s: StoredService): string {
  const list = s.revision.spec.ports.map((p) => {
    const pub = p.publish ? `→${p.publish.address ?? ''}:${p.publish.port}${p.publish.host ? `(${p.publish.host})` : ''}` : '';
    return `${p.port}/${p.protocol}${pub}`;
  });
  return list.join(',') || '<none>';
}

function autoscale(s: StoredService): string {
  const a = s.revision.spec.autoscale;
  if (!a) return '<none>';
  const parts = [`${a.min}-${a.max}`];
  if (a.cpuPercent !== null) parts.push(`cpu ${a.cpuPercent}%`);
  if (a.memoryPercent !== null) parts.push(`mem ${a.memoryPercent}%`);
  if (a.idleToZeroMs !== null) parts.push('idle→0');
  return parts.join(' ');
}

function image(s: StoredService): string {
  const spec = s.revision.spec;
  return spec.image ?? `build:${spec.build!.context}`;
}

function resources(s: StoredService): string {
  const r = s.revision.spec.resources;
  const parts = [];
  if (r.cpuMillis !== null) parts.push(`cpu ${formatCpu(r.cpuMillis)}`);
  if (r.memoryBytes !== null) parts.push(`mem ${formatMemory(r.memoryBytes)}`);
  if (r.pids !== null) parts.push(`pids ${r.pids}`);
  return parts.join(' ') || '<none>';
}

export async function get(ctx: Context, words: string[], opts: GetOptions): Promise<void> {
  const output = opts.output;
  if (output !== undefined && !(OUTPUT_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`get: unknown output format "${output}" (use ${OUTPUT_FORMATS.join(', ')})`);
  }
  if (words[0] !== undefined && INSTANCE_WORDS.includes(words[0])) {
    if (output === 'yaml') throw new UsageError('get instances: use -o wide or -o json');
    const { getInstances } = await import('./instances.js');
    return getInstances(ctx, words[1], output);
  }
  const { name } = parseTarget(words, 'get');
  const data = await ctx.store().read();
  let services = Object.values(data.services).sort((a, b) => (a.name < b.name ? -1 : 1));
  if (name !== undefined) {
    services = services.filter((s) => s.name === name);
    if (!services.length) throw new NotFoundError(`service "${name}" not found`);
  }
  if (output === 'json') {
    const docs = services.map(serviceDocument);
    write(JSON.stringify(name !== undefined ? docs[0] : { items: docs }, null, 2));
    return;
  }
  if (output === 'yaml') {
    if (services.length) write(services.map((s) => stringify(serviceDocument(s), { lineWidth: 0 })).join('---\n'));
    return;
  }
  if (!services.length) {
    process.stderr.write('no services\n');
    return;
  }
  const now = ctx.now();
  const statuses = new Map(serviceStatuses(data, now.getTime()).map((st) => [st.name, st]));
  const head = ['NAME', 'READY', 'STATUS', 'IMAGE', 'REVISION', 'SOURCE', 'AGE'];
  const wide = ['PORTS', 'RESOURCES', 'AUTOSCALE', 'DEPENDS-ON', 'TEMPLATE'];
  const rows = services.map((s) => {
    const st = statuses.get(s.name)!;
    const base = [s.name, `${st.ready}/${st.desired}`, st.phase, image(s), String(s.revision.revision), s.source, age(s.createdAt, now)];
    if (output !== 'wide') return base;
    return [...base, ports(s), resources(s), autoscale(s), s.revision.spec.dependsOn.join(',') || '<none>', s.revision.templateHash.slice(0, 8)];
  });
  write(table(output === 'wide' ? [...head, ...wide] : head, rows));
}
