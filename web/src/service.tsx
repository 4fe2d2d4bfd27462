// A service: its charts (CPU, memory, network, block I/O, requests) with
// markers, its instances with logs, its live events, and operators' actions.
import { useMemo, useState } from 'preact/hooks';
import type { Series } from '../../src/metrics/types.js';
import type { EventRow, LogsResponse, ServiceDetail } from '../../src/web/types.js';
import { formatByteRate, formatBytes, formatClock, formatCpu, formatPerSec, formatReady } from '../lib/format.js';
import { VIEWER_NOTE } from '../lib/words.js';
import { alignSeries, combine, eventConcerns, markersIn, mergeEvents, type Columns } from '../lib/series.js';
import { get, query } from './api.js';
import { Chart, MARKER_COLORS } from './chart.js';
import { ErrorNote, StatusLine, useAction, useCan, useMarkOnce, usePoll } from './common.js';
import { EventList } from './overview.js';

const WINDOWS = [
  { label: '5 min', ms: 5 * 60_000 },
  { label: '15 min', ms: 15 * 60_000 },
  { label: '1 hour', ms: 60 * 60_000 },
  { label: '6 hours', ms: 6 * 60 * 60_000 },
  { label: '1 day', ms: 24 * 60 * 60_000 },
];
const POINTS = 240;

interface ChartDef {
  title: string;
  metrics: Array<[metric: string, label: string]>;
  format: (v: number | null) => string;
  floor: number;
}

const INSTANCE_CHARTS: ChartDef[] = [
  { title: 'CPU', metrics: [['cpuCores', 'cpu']], format: formatCpu, floor: 0.01 },
  { title: 'Memory', metrics: [['memoryWorkingSetBytes', 'memory']], format: formatBytes, floor: 1024 * 1024 },
  { title: 'Network', metrics: [['netRxBytesPerSec', 'rx'], ['netTxBytesPerSec', 'tx']], format: formatByteRate, floor: 1024 },
  { title: 'Block I/O', metrics: [['blkReadBytesPerSec', 'read'], ['blkWriteBytesPerSec', 'write']], format: formatByteRate, floor: 1024 },
];

type Mode = 'total' | 'instance';

interface Loaded {
  fromMs: number;
  toMs: number;
  /** Whose lines these are: the service (its total, summed by the server) or each instance. */
  names: string[];
  /** metric → name → series */
  byMetric: Record<string, Record<string, Series>>;
  requests: Series;
}

async function loadSeries(service: string, mode: Mode, instances: string[], windowMs: number): Promise<Loaded> {
  const toMs = Date.now();
  const fromMs = toMs - windowMs;
  const one = (kind: string, name: string, metric: string) =>
    get<Series>(`/api/metrics/series?${query({ kind, name, metric, from: fromMs, to: toMs, points: POINTS })}`);
  const kind = mode === 'total' ? 'service' : 'instance';
  const names = mode === 'total' ? [service] : instances;
  const byMetric: Record<string, Record<string, Series>> = {};
  const jobs: Array<Promise<void>> = [];
  for (const def of INSTANCE_CHARTS) {
    for (const [metric] of def.metrics) {
      byMetric[metric] = {};
      for (const name of names) jobs.push(one(kind, name, metric).then((s) => void (byMetric[metric]![name] = s)));
    }
  }
  const requests = one('service', service, 'requestsPerSec');
  await Promise.all(jobs);
  const loaded = { fromMs, toMs, names, byMetric, requests: await requests };
  performance.mark('carte:series-loaded'); // for bench/dashboard.ts's timeline
  return loaded;
}

function columnsFor(def: ChartDef, loaded: Loaded, mode: Mode): { columns: Columns; labels: string[] } {
  const parts: Columns[] = [];
  const labels: string[] = [];
  for (const [metric, label] of def.metrics) {
    parts.push(alignSeries(loaded.names.map((n) => loaded.byMetric[metric]?.[n] ?? { t: [], v: [], stepMs: 0 })));
    for (const n of loaded.names) labels.push(mode === 'instance' ? (def.metrics.length > 1 ? `${n} ${label}` : n) : def.metrics.length > 1 ? label : def.title);
  }
  return { columns: combine(parts), labels };
}

export function ServicePage({ name, events, eventTick }: { name: string; events: EventRow[]; eventTick: number }) {
  const detail = usePoll(() => get<ServiceDetail>(`/api/services/${encodeURIComponent(name)}`), [name], 2000, eventTick);
  const [windowMs, setWindowMs] = useState(WINDOWS[1]!.ms);
  const [mode, setMode] = useState<Mode>('total');
  const d = detail.data;
  const instanceNames = useMemo(() => [...new Set((d?.instances ?? []).map((i) => i.name))].sort(), [d?.instances.map((i) => i.name).join(',')]);
  const series = usePoll(() => loadSeries(name, mode, instanceNames, windowMs), [name, mode, mode === 'instance' ? instanceNames.join(',') : '', windowMs], 5000);
  useMarkOnce('carte:charts-drawn', series.data !== null && detail.data !== null);
  const live = useMemo(() => mergeEvents(d?.events ?? [], events.filter((e) => eventConcerns(e, name)), 50), [d?.events, events, name]);

  if (!d) {
    return (
      <main>
        <h1>{name}</h1>
        {detail.error ? <ErrorNote error={detail.error} /> : <p class="muted">Loading…</p>}
      </main>
    );
  }
  const s = d.service;
  const loaded = series.data;
  const markers = loaded ? markersIn(d.markers, loaded.fromMs, loaded.toMs) : [];
  return (
    <main>
      <p class="crumbs"><a href="#/">Services</a> ›</p>
      <h1>{s.name}</h1>
      <ErrorNote error={detail.error} />
      <dl class="facts">
        <div><dt>Ready</dt><dd>{formatReady(s.ready, s.desired)}</dd></div>
        <div><dt>Phase</dt><dd><span class={`phase phase-${s.phase.toLowerCase()}`}>{s.phase}</span>{s.reason && ` — ${s.reason}`}</dd></div>
        <div><dt>Image</dt><dd><code>{s.image}</code> (revision {s.revision})</dd></div>
        <div><dt>CPU</dt><dd>{formatCpu(s.cpuCores)}</dd></div>
        <div><dt>Memory</dt><dd>{formatBytes(s.memoryBytes)}</dd></div>
        <div><dt>Requests</dt><dd>{formatPerSec(s.traffic?.requestsPerSec)}</dd></div>
        <div><dt>Scaling</dt><dd>{s.autoscaled ? 'autoscaled' : `${s.desired} replica${s.desired === 1 ? '' : 's'}`}{s.suspended && ', stopped'}</dd></div>
      </dl>
      {d.alerts.length > 0 && (
        <ul class="alerts-inline" aria-label="Alerts of this service">
          {d.alerts.map((a) => (
            <li key={a.id} class={a.resolvedAt ? 'muted' : `alert-${a.severity}`}>
              <strong>{a.rule}</strong> {a.object}: {a.message}{' '}
              <span class="muted">{a.resolvedAt ? `(fired ${formatClock(a.firedAt)}, resolved ${formatClock(a.resolvedAt)})` : `(firing since ${formatClock(a.firedAt)})`}</span>
            </li>
          ))}
        </ul>
      )}
      <Actions detail={d} reload={detail.reload} />

      <section aria-labelledby="charts-title">
        <h2 id="charts-title">Metrics</h2>
        <div class="chart-controls">
          <label>
            Window{' '}
            <select value={windowMs} onChange={(e) => setWindowMs(Number(e.currentTarget.value))}>
              {WINDOWS.map((w) => <option key={w.ms} value={w.ms}>{w.label}</option>)}
            </select>
          </label>
          <fieldset class="mode">
            <legend>Lines</legend>
            <label><input type="radio" name="mode" checked={mode === 'total'} onChange={() => setMode('total')} /> service total</label>
            <label><input type="radio" name="mode" checked={mode === 'instance'} onChange={() => setMode('instance')} /> per instance</label>
          </fieldset>
          <ul class="marker-legend" aria-label="Marker colours">
            {Object.entries(MARKER_COLORS).map(([kind, color]) => (
              <li key={kind}><span class="swatch" style={{ backgroundColor: color }} />{kind}</li>
            ))}
          </ul>
        </div>
        <ErrorNote error={series.error} />
        {loaded ? (
          <div class="charts" data-window={loaded.toMs - loaded.fromMs}>
            {INSTANCE_CHARTS.map((def) => {
              const { columns, labels } = columnsFor(def, loaded, mode);
              return <Chart key={`${def.title}-${loaded.names.join(',')}`} title={def.title} columns={columns} labels={labels} format={def.format} floor={def.floor} markers={markers} fromMs={loaded.fromMs} toMs={loaded.toMs} />;
            })}
            <Chart key="requests" title="Requests" columns={{ t: loaded.requests.t, lines: [loaded.requests.v] }} labels={['requests/s']} format={formatPerSec} floor={1} markers={markers} fromMs={loaded.fromMs} toMs={loaded.toMs} />
          </div>
        ) : <p class="muted">Loading charts…</p>}
        {markers.length > 0 && (
          <details class="markers">
            <summary>Markers in this window ({markers.length})</summary>
            <ul>{markers.map((m) => <li key={`${m.at}-${m.kind}-${m.label}`}><time dateTime={new Date(m.at).toISOString()}>{formatClock(m.at)}</time> <strong>{m.kind}</strong> {m.label}</li>)}</ul>
          </details>
        )}
      </section>

      <Instances detail={d} />
      <EventList title="Events" events={live} />
    </main>
  );
}

function Actions({ detail, reload }: { detail: ServiceDetail; reload: () => void }) {
  const canAct = useCan('operator');
  const { busy, outcome, run } = useAction(reload);
  const s = detail.service;
  const [replicas, setReplicas] = useState(String(s.desired));
  if (!canAct) return <p class="muted role-note">{VIEWER_NOTE}</p>;
  const path = (action: string) => `/api/services/${encodeURIComponent(s.name)}/${action}`;
  return (
    <section class="actions" aria-label="Actions">
      <button type="button" disabled={busy} onClick={() => run(path('start'))}>Start</button>
      <button type="button" disabled={busy} onClick={() => run(path('stop'))}>Stop</button>
      <button type="button" disabled={busy} onClick={() => run(path('restart'))}>Restart</button>
      <button type="button" disabled={busy} onClick={() => run(path('rollback'), {})}>Roll back</button>
      <form class="scale" onSubmit={(e) => { e.preventDefault(); void run(path('scale'), { replicas: Number(replicas) }); }}>
        <label>
          Replicas{' '}
          <input type="number" min="0" step="1" required value={replicas} disabled={s.autoscaled || busy} onInput={(e) => setReplicas(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={s.autoscaled || busy} title={s.autoscaled ? 'autoscaled: the autoscaler sets the replicas' : undefined}>Scale</button>
        {s.autoscaled && <span class="muted"> autoscaled: the autoscaler sets the replicas</span>}
      </form>
      <StatusLine outcome={outcome} />
    </section>
  );
}

function Instances({ detail }: { detail: ServiceDetail }) {
  const [logs, setLogs] = useState<{ instance: string; previous: boolean } | null>(null);
  return (
    <section aria-labelledby="instances-title">
      <h2 id="instances-title">Instances</h2>
      {detail.instances.length === 0 ? <p class="muted">No instance (scaled to zero or stopped).</p> : (
        <div class="scroll"><table class="instances">
          <thead>
            <tr>
              <th scope="col">Instance</th><th scope="col">State</th><th scope="col">Ready</th><th scope="col" class="num">Restarts</th>
              <th scope="col" class="num">CPU</th><th scope="col" class="num">Memory</th><th scope="col">Address</th><th scope="col">Logs</th>
            </tr>
          </thead>
          <tbody>
            {detail.instances.map((i) => (
              <tr key={i.name} data-instance={i.name}>
                <th scope="row">{i.name}</th>
                <td>{i.state}</td>
                <td>{i.ready ? 'yes' : 'no'}</td>
                <td class="num">{i.restarts}</td>
                <td class="num">{formatCpu(i.latest?.cpuCores)}</td>
                <td class="num">{formatBytes(i.latest?.memoryWorkingSetBytes)}</td>
                <td>{i.ip ?? ''}</td>
                <td>
                  <button type="button" class="link" onClick={() => setLogs({ instance: i.name, previous: false })}>logs</button>
                  {i.previous && <> · <button type="button" class="link" onClick={() => setLogs({ instance: i.name, previous: true })}>previous logs</button></>}
                </td>
              </tr>
            ))}
          </tbody>
        </table></div>
      )}
      {logs && <Logs instance={logs.instance} previous={logs.previous} onClose={() => setLogs(null)} />}
    </section>
  );
}

function Logs({ instance, previous, onClose }: { instance: string; previous: boolean; onClose: () => void }) {
  const logs = usePoll(
    () => get<LogsResponse>(`/api/instances/${encodeURIComponent(instance)}/logs?${query({ tail: 200, previous: previous ? 1 : undefined })}`),
    [instance, previous], previous ? 3_600_000 : 3000,
  );
  return (
    <section class="logs" aria-label={`Logs of ${instance}`}>
      <header>
        <h3>{previous ? 'Previous logs' : 'Logs'} of {instance} <span class="muted">(last 200 lines)</span></h3>
        <button type="button" onClick={logs.reload}>Refresh</button> <button type="button" onClick={onClose}>Close</button>
      </header>
      <ErrorNote error={logs.error} />
      <pre tabIndex={0}>{logs.data ? (logs.data.lines.length ? logs.data.lines.join('\n') : '(no output)') : 'Loading…'}</pre>
    </section>
  );
}
