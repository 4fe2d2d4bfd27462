// The overview: every service with readiness, phase and why, and its latest
// CPU, memory and requests; refreshed every 2 s and on each new event.
import type { EventRow, LatestMetrics, ServiceRow } from '../../src/web/types.js';
import { formatBytes, formatClock, formatCpu, formatPerSec, formatReady } from '../lib/format.js';
import { get } from './api.js';
import { ErrorNote, href, useMarkOnce, usePoll } from './common.js';

/** The contract names the route's rows; accept them bare or wrapped as { services }. */
function rowsOf(r: ServiceRow[] | { services: ServiceRow[] }): ServiceRow[] {
  return Array.isArray(r) ? r : r.services;
}

export function Overview({ events, eventTick }: { events: EventRow[]; eventTick: number }) {
  const services = usePoll(async () => rowsOf(await get<ServiceRow[] | { services: ServiceRow[] }>('/api/services')), [], 2000, eventTick);
  const rows = services.data ?? [];
  useMarkOnce('carte:overview-drawn', services.data !== null);
  return (
    <main>
      <h1>Services</h1>
      <HostLine />
      <ErrorNote error={services.error} />
      {services.data && rows.length === 0 && <p>No services yet: apply manifests with <code>carte apply -f DIR</code> or run the daemon with <code>--watch DIR</code>.</p>}
      {rows.length > 0 && (
        <div class="scroll"><table class="services">
          <thead>
            <tr>
              <th scope="col">Service</th><th scope="col">Ready</th><th scope="col">Phase</th><th scope="col">Reason</th>
              <th scope="col" class="num">CPU</th><th scope="col" class="num">Memory</th><th scope="col" class="num">Requests</th><th scope="col">Image</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <tr key={s.name} data-service={s.name}>
                <th scope="row"><a href={href(`/services/${encodeURIComponent(s.name)}`)}>{s.name}</a></th>
                <td class={s.ready < s.desired ? 'warn' : ''}>{formatReady(s.ready, s.desired)}</td>
                <td><span class={`phase phase-${s.phase.toLowerCase()}`}>{s.phase}</span>{s.autoscaled && <span class="tag">autoscaled</span>}{s.suspended && <span class="tag">stopped</span>}</td>
                <td>{s.reason ?? ''}</td>
                <td class="num">{formatCpu(s.cpuCores)}</td>
                <td class="num">{formatBytes(s.memoryBytes)}</td>
                <td class="num">{formatPerSec(s.traffic?.requestsPerSec)}</td>
                <td><code>{s.image}</code> <span class="muted">rev {s.revision}</span></td>
              </tr>
            ))}
          </tbody>
        </table></div>
      )}
      <EventList title="Recent events" events={events.slice(-15)} />
    </main>
  );
}

/** The machine itself: CPU, memory and the disk holding CARTE_HOME, from the latest sample. */
function HostLine() {
  const latest = usePoll(() => get<LatestMetrics>('/api/metrics/latest'), [], 5000);
  const h = latest.data?.host;
  if (!h) return null;
  return (
    <p class="host" aria-label="Host">
      Host: CPU {h.cpuPercent == null ? '—' : `${Math.round(h.cpuPercent)} %`} of {h.cores} core{h.cores === 1 ? '' : 's'} ·
      memory {formatBytes(h.memoryUsedBytes)} of {formatBytes(h.memoryTotalBytes)} ·
      disk {formatBytes(h.diskFreeBytes)} free of {formatBytes(h.diskTotalBytes)}
    </p>
  );
}

export function EventList({ title, events }: { title: string; events: EventRow[] }) {
  return (
    <section aria-labelledby="events-title">
      <h2 id="events-title">{title}</h2>
      {events.length === 0 ? <p class="muted">None yet.</p> : (
        <ol class="events" aria-live="polite">
          {[...events].reverse().map((e) => (
            <li key={e.id} class={e.type === 'Warning' ? 'warn' : ''} data-reason={e.reason}>
              <time dateTime={e.at}>{formatClock(e.at)}</time> <span class="obj">{e.object}</span> <strong>{e.reason}</strong> {e.message}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
