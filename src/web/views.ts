// The dashboard's read models, built from the store's snapshot, the driver's
// instances and the collector's latest sample. Pure: the routes gather, these shape.
import type { Alert } from '../alerts/types.js';
import { serviceStatuses } from '../api/status.js';
import type { ObservedInstance } from '../drivers/driver.js';
import type { MetricsSnapshot } from '../metrics/types.js';
import { isManaged, type InstanceHealthRecord } from '../model/instances.js';
import type { CarteEvent, StateData } from '../store/state.js';
import type { EventRow, InstanceRow, Marker, ServiceRow } from './types.js';

export const EMPTY_SNAPSHOT: MetricsSnapshot = { at: 0, instances: [], services: [], host: null };

/** Sum of the non-null values, or null when there are none. */
function sum(values: Array<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? known.reduce((a, b) => a + b, 0) : null;
}

export function serviceRows(data: Readonly<StateData>, metrics: MetricsSnapshot, now: number): ServiceRow[] {
  return serviceStatuses(data as StateData, now).map((st) => {
    const s = data.services[st.name]!;
    const mine = metrics.instances.filter((i) => i.service === st.name);
    return {
      ...st,
      // A service built from a Cartefile has no image reference of its own.
      image: s.revision.spec.image ?? '(built)',
      revision: s.revision.revision,
      autoscaled: s.revision.spec.autoscale !== null && s.revision.spec.autoscale !== undefined,
      suspended: s.suspended === true,
      traffic: metrics.services.find((x) => x.service === st.name) ?? null,
      cpuCores: sum(mine.map((i) => i.cpuCores)),
      memoryBytes: mine.length ? mine.reduce((a, i) => a + i.memoryWorkingSetBytes, 0) : null,
    };
  });
}

/** A service's instances as the driver sees them, with readiness from the store and the latest sample. */
export function instanceRows(data: Readonly<StateData>, observed: readonly ObservedInstance[], metrics: MetricsSnapshot, service: string, withPrevious: ReadonlySet<string>): InstanceRow[] {
  const records = data.instances as Record<string, InstanceHealthRecord>;
  return observed.filter((i) => isManaged(i) && i.service === service).sort((a, b) => (a.name < b.name ? -1 : 1)).map((i) => ({
    name: i.name,
    service: i.service,
    state: i.state,
    ready: records[i.name]?.ready ?? false,
    restarts: records[i.name]?.restarts ?? 0,
    ip: i.ip,
    startedAt: i.startedAt,
    latest: metrics.instances.find((x) => x.instance === i.name) ?? null,
    previous: withPrevious.has(i.name),
  }));
}

export function eventRow(e: CarteEvent): EventRow {
  return { id: e.seq, at: e.at, type: e.type, object: e.object, reason: e.reason, message: e.message };
}

const MARKER_KINDS: Record<string, Marker['kind']> = {
  Created: 'deploy', Configured: 'deploy', Updated: 'deploy', RolledBack: 'deploy', SecretChanged: 'deploy',
  Scaled: 'scale', Autoscaled: 'scale', ScaledToZero: 'scale',
  Woken: 'wake',
  RestartRequested: 'restart', InstanceRestarted: 'restart',
  AlertFired: 'alert',
};

/** Whether an event or alert object (`service/web`, `instance/web-1`) concerns this service. */
export function concerns(object: string, service: string, data: Readonly<StateData>): boolean {
  if (object === `service/${service}`) return true;
  if (!object.startsWith('instance/')) return false;
  const instance = object.slice('instance/'.length);
  const rec = (data.instances as Record<string, InstanceHealthRecord>)[instance];
  return rec ? rec.service === service : instance.startsWith(`${service}-`);
}

/** Chart markers from a service's events: deploys, scaling, wakes, restarts and alerts. */
export function markers(events: readonly CarteEvent[]): Marker[] {
  const out: Marker[] = [];
  for (const e of events) {
    const kind = MARKER_KINDS[e.reason];
    if (kind) out.push({ at: Date.parse(e.at), kind, label: `${e.reason}: ${e.message}` });
  }
  return out;
}

/** Events kept for one service's page. */
export const DETAIL_EVENTS = 100;

export function serviceEvents(data: Readonly<StateData>, service: string): CarteEvent[] {
  return data.events.filter((e) => concerns(e.object, service, data));
}

export function serviceAlerts(alerts: readonly Alert[], service: string, data: Readonly<StateData>): Alert[] {
  return alerts.filter((a) => concerns(a.object, service, data));
}
