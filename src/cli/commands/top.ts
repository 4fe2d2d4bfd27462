// `carte top` and `carte stats`: the daemon's metrics collector, read over its
// unix API. top shows the last round (live, redrawn every 2 s, or once for
// scripts); stats shows one instance's or service's history as a small table
// with sparklines.
import { connectDaemon, type DaemonClient } from '../../daemon/client.js';
import { CarteError, NotFoundError, UsageError } from '../../errors.js';
import { FIELDS } from '../../metrics/history.js';
import type { MetricsSnapshot, Series, SeriesKind } from '../../metrics/types.js';
import { formatDuration, parseDuration } from '../../schema/units.js';
import type { Context } from '../context.js';
import { SORT_KEYS, statsTable, topText, type SortKey } from '../metrics-format.js';
import { write } from '../output.js';

export const REFRESH_MS = 2000;

async function daemonOf(ctx: Context, command: string): Promise<DaemonClient> {
  const client = await connectDaemon(ctx.home);
  if (!client) throw new CarteError('io', `${command}: no daemon answers in ${ctx.home}; metrics come from the daemon's collector: start it with \`carte daemon\``);
  return client;
}

export interface TopOptions {
  once?: boolean;
  sort?: string;
}

function sortKey(text: string | undefined): SortKey {
  const keys = Object.values(SORT_KEYS);
  if (text === undefined) return 'cpu';
  if (!(keys as string[]).includes(text)) throw new UsageError(`top: --sort takes one of ${keys.join(', ')}, got "${text}"`);
  return text as SortKey;
}

const HELP = 'c cpu  m memory  n name  r restarts  i network  q quit';

export async function top(ctx: Context, opts: TopOptions): Promise<void> {
  let sort = sortKey(opts.sort);
  const client = await daemonOf(ctx, 'top');
  const latest = () => client.get<MetricsSnapshot>('/v1/metrics/latest');
  // Not a terminal (a pipe, a script): one table, as --once.
  if (opts.once || !process.stdout.isTTY || !process.stdin.isTTY) {
    write(topText(await latest(), sort));
    return;
  }
  const out = process.stdout;
  const stdin = process.stdin;
  let timer: NodeJS.Timeout | null = null;
  let snap: MetricsSnapshot | null = null;
  let problem: string | null = null;
  const draw = () => {
    const ago = snap && snap.at ? `sampled ${formatDuration(Math.max(0, Math.round((Date.now() - snap.at) / 1000) * 1000))} ago` : 'no sample yet';
    const body = problem ? `${problem}\n` : snap ? topText(snap, sort) : 'waiting for the daemon…\n';
    // Home, clear, then the screen; lines cut to the terminal's width so nothing wraps.
    const width = out.columns || 200;
    const lines = `carte top — sorted by ${sort}, ${ago} — ${HELP}\n\n${body}`.split('\n').map((l) => l.slice(0, width));
    out.write(`\x1b[H\x1b[2J${lines.slice(0, (out.rows || 1000) - 1).join('\n')}`);
  };
  const refresh = async () => {
    try {
      snap = await latest();
      problem = null;
    } catch (e) {
      problem = `the daemon did not answer: ${(e as Error).message}`;
    }
    draw();
  };
  await new Promise<void>((resolve) => {
    const finish = () => {
      if (timer) clearInterval(timer);
      stdin.off('data', onKey);
      process.off('SIGTERM', finish);
      out.off('resize', draw);
      // Give the terminal back as it was: cooked input, cursor shown, the main screen.
      stdin.setRawMode(false);
      stdin.pause();
      out.write('\x1b[?25h\x1b[?1049l');
      resolve();
    };
    const onKey = (data: Buffer) => {
      const key = data.toString('utf8');
      if (key === 'q' || key === '\x03' || key === '\x1b') return finish();
      const next = SORT_KEYS[key.toLowerCase()];
      if (next) {
        sort = next;
        draw();
      }
    };
    out.write('\x1b[?1049h\x1b[?25l');
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onKey);
    process.once('SIGTERM', finish);
    out.on('resize', draw);
    timer = setInterval(() => void refresh(), REFRESH_MS);
    void refresh();
  });
}

export interface StatsOptions {
  metric?: string[];
  since?: string;
}

/** What `carte stats` shows without --metric. */
export const DEFAULT_METRICS: Record<'instance' | 'service', string[]> = {
  instance: ['cpuCores', 'memoryWorkingSetBytes', 'netRxBytesPerSec', 'netTxBytesPerSec'],
  service: ['requestsPerSec', 'errorsPerSec', 'latencyP95Ms', 'connections'],
};

/** Points per sparkline. */
export const SPARK_POINTS = 40;

export async function stats(ctx: Context, name: string, opts: StatsOptions): Promise<void> {
  const since = parseDuration(opts.since ?? '1h');
  if (!since.ok) throw new UsageError(`stats: --since: ${since.message}`);
  const client = await daemonOf(ctx, 'stats');
  const known = await client.get<Record<SeriesKind, string[]>>('/v1/metrics/known');
  const kind: 'instance' | 'service' | null = known.instance.includes(name) ? 'instance' : known.service.includes(name) ? 'service' : null;
  if (!kind) throw new NotFoundError(`stats: no instance or service "${name}" has metrics history (carte top lists what is sampled now)`);
  const metrics = (opts.metric ?? []).flatMap((m) => m.split(',')).map((m) => m.trim()).filter(Boolean);
  for (const m of metrics) {
    if (!FIELDS[kind].includes(m)) throw new UsageError(`stats: --metric "${m}" is not a metric of ${kind === 'instance' ? 'an instance' : 'a service'}; use one of ${FIELDS[kind].join(', ')}`);
  }
  const chosen = metrics.length ? metrics : DEFAULT_METRICS[kind];
  const rows = await Promise.all(chosen.map(async (metric) => {
    const q = new URLSearchParams({ kind, name, metric, from: String(Date.now() - since.value), maxPoints: String(SPARK_POINTS) });
    return { metric, series: await client.get<Series>(`/v1/metrics/series?${q}`) };
  }));
  const step = Math.max(...rows.map((r) => r.series.stepMs));
  write(`${kind} ${name}, last ${formatDuration(since.value)}, one point per ${formatDuration(step)}\n\n${statsTable(rows)}`);
}
