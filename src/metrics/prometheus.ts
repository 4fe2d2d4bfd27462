// The collector's last round in the Prometheus text format, for a scraper
// (the daemon's unix API `GET /v1/metrics`, the web listener's `/metrics`).
// A registry of its own per scrape (never prom-client's global one): what is
// gone is simply not there, and nothing of the daemon's own leaks in.
// Kernel and gateway counters are exposed as the cumulative counters they are
// (Prometheus takes rates itself); the request latency histogram is written
// by hand from the gateway's buckets (prom-client's Histogram only observes).
import { Counter, Gauge, Registry } from 'prom-client';
import type { Alert } from '../alerts/types.js';
import { LATENCY_BUCKETS_MS } from '../gateway/stats.js';
import type { RawReadings } from './collector.js';
import type { MetricsSnapshot } from './types.js';

export interface PrometheusSource {
  raw(): RawReadings;
  latest(): MetricsSnapshot;
}

type Labels = Record<string, string>;

/** Escapes a label value for the text format. */
const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** The histogram lines of carte_service_request_duration_seconds (cumulative buckets, as the format wants). */
export function latencyHistogramText(services: RawReadings['services']): string {
  const name = 'carte_service_request_duration_seconds';
  const lines = [`# HELP ${name} Time from an HTTP request reaching the gateway to its answer being sent.`, `# TYPE ${name} histogram`];
  for (const { service, traffic } of services) {
    const l = `service="${esc(service)}"`;
    let cum = 0;
    LATENCY_BUCKETS_MS.forEach((ms, i) => {
      cum += traffic.latencyBuckets[i] ?? 0;
      lines.push(`${name}_bucket{${l},le="${ms / 1000}"} ${cum}`);
    });
    lines.push(`${name}_bucket{${l},le="+Inf"} ${traffic.latencyCount}`);
    lines.push(`${name}_sum{${l}} ${traffic.latencySumMs / 1000}`);
    lines.push(`${name}_count{${l}} ${traffic.latencyCount}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function renderPrometheus(source: PrometheusSource, alerts?: { active(): Alert[] } | null): Promise<{ contentType: string; body: string }> {
  const reg = new Registry();
  const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers: [reg] });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [reg] });
  const raw = source.raw();
  const snap = source.latest();
  const I = ['service', 'instance'];

  const cpu = counter('carte_instance_cpu_seconds_total', 'CPU time the instance used, in seconds.', I);
  const throttledS = counter('carte_instance_cpu_throttled_seconds_total', 'Time the instance was held back by its CPU limit, in seconds.', I);
  const periods = counter('carte_instance_cpu_periods_total', 'CFS periods in which the instance ran.', I);
  const throttledP = counter('carte_instance_cpu_throttled_periods_total', 'CFS periods in which the instance was throttled.', I);
  const cpuLimit = gauge('carte_instance_cpu_limit_cores', 'The instance\'s CPU limit, in cores.', I);
  const ws = gauge('carte_instance_memory_working_set_bytes', 'Memory in use minus inactive file cache (what the kernel cannot reclaim easily), in bytes.', I);
  const usage = gauge('carte_instance_memory_usage_bytes', 'Memory charged to the instance, cache included, in bytes.', I);
  const memLimit = gauge('carte_instance_memory_limit_bytes', 'The instance\'s memory limit, in bytes.', I);
  const rxB = counter('carte_instance_network_receive_bytes_total', 'Bytes received by the instance (all interfaces but lo).', I);
  const txB = counter('carte_instance_network_transmit_bytes_total', 'Bytes sent by the instance (all interfaces but lo).', I);
  const rxP = counter('carte_instance_network_receive_packets_total', 'Packets received by the instance.', I);
  const txP = counter('carte_instance_network_transmit_packets_total', 'Packets sent by the instance.', I);
  const blkR = counter('carte_instance_blkio_read_bytes_total', 'Bytes the instance read from block devices.', I);
  const blkW = counter('carte_instance_blkio_write_bytes_total', 'Bytes the instance wrote to block devices (direct I/O only on cgroup v1).', I);
  const pids = gauge('carte_instance_pids', 'Processes and threads in the instance.', I);
  const restarts = gauge('carte_instance_restarts', 'Times the instance was restarted in place.', I);
  const ready = gauge('carte_instance_ready', '1 when the instance is ready (receives traffic), else 0.', I);
  const inc = (c: Counter, l: Labels, v: number | null | undefined) => {
    if (v !== null && v !== undefined) c.inc(l, v);
  };
  const set = (g: Gauge, l: Labels, v: number | null | undefined) => {
    if (v !== null && v !== undefined) g.set(l, v);
  };
  for (const r of raw.instances) {
    const l = { service: r.service, instance: r.instance };
    const s = r.stats;
    inc(cpu, l, s.cpuUsageNs / 1e9);
    inc(throttledS, l, s.cpuThrottledNs === null ? null : s.cpuThrottledNs / 1e9);
    inc(periods, l, s.cpuPeriods);
    inc(throttledP, l, s.cpuThrottledPeriods);
    set(cpuLimit, l, s.cpuLimitMillis === null ? null : s.cpuLimitMillis / 1000);
    set(ws, l, s.memoryWorkingSetBytes);
    set(usage, l, s.memoryUsageBytes);
    set(memLimit, l, s.memoryLimitBytes);
    inc(rxB, l, s.net?.rxBytes);
    inc(txB, l, s.net?.txBytes);
    inc(rxP, l, s.net?.rxPackets);
    inc(txP, l, s.net?.txPackets);
    inc(blkR, l, s.blkReadBytes);
    inc(blkW, l, s.blkWriteBytes);
    set(pids, l, s.pids);
    set(restarts, l, r.restarts);
    set(ready, l, r.ready ? 1 : 0);
  }

  const conns = gauge('carte_service_connections', 'Connections open through the gateway to the service now.', ['service']);
  const reqs = counter('carte_service_requests_total', 'HTTP requests and TCP connections the gateway received for the service.', ['service']);
  const errs = counter('carte_service_errors_total', 'Answers >= 500, upstream failures and connections no instance took.', ['service']);
  for (const { service, traffic } of raw.services) {
    conns.set({ service }, traffic.connections);
    inc(reqs, { service }, traffic.requests);
    inc(errs, { service }, traffic.errors);
  }

  const host = snap.host;
  if (host) {
    set(gauge('carte_host_cpu_usage_ratio', 'Share of all CPUs busy over the last sampling interval (0-1).'), {}, host.cpuPercent === null ? null : host.cpuPercent / 100);
    set(gauge('carte_host_cpu_cores', 'CPUs available.'), {}, host.cores);
    set(gauge('carte_host_memory_used_bytes', 'Memory in use (total minus available).'), {}, host.memoryUsedBytes);
    set(gauge('carte_host_memory_total_bytes', 'Memory of the host.'), {}, host.memoryTotalBytes);
    set(gauge('carte_host_disk_free_bytes', 'Free bytes on the filesystem holding CARTE_HOME.'), {}, host.diskFreeBytes);
    set(gauge('carte_host_disk_total_bytes', 'Size of the filesystem holding CARTE_HOME.'), {}, host.diskTotalBytes);
  }
  set(gauge('carte_metrics_last_sample_timestamp_seconds', 'When the collector last sampled (seconds since the epoch; 0: not yet).'), {}, snap.at / 1000);

  const firing = gauge('carte_alerts_firing', 'Alerts firing now, by rule and severity.', ['rule', 'severity']);
  if (alerts) {
    const counts = new Map<string, { rule: string; severity: string; n: number }>();
    for (const a of alerts.active()) {
      const k = `${a.rule} ${a.severity}`;
      const c = counts.get(k) ?? { rule: a.rule, severity: a.severity, n: 0 };
      c.n++;
      counts.set(k, c);
    }
    for (const c of counts.values()) firing.set({ rule: c.rule, severity: c.severity }, c.n);
  }

  const body = (await reg.metrics()) + latencyHistogramText(raw.services);
  return { contentType: reg.contentType, body };
}
