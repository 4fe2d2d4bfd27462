// How the page writes figures: the same units as manifests (cpu in cores or
// millicores, memory in Ki/Mi/Gi), so what an operator reads matches what they set.

const DASH = '—';

/** CPU in cores: 0.25 → "250m", 0.0004 → "0.4m" (an idle instance's few millicores still differ), 1.5 → "1.50", null → "—". */
export function formatCpu(cores: number | null | undefined): string {
  if (cores == null || !Number.isFinite(cores)) return DASH;
  const milli = cores * 1000;
  if (milli === 0) return '0m';
  if (milli < 9.95) return `${milli.toFixed(1)}m`;
  if (Math.round(milli) < 1000) return `${Math.round(milli)}m`;
  return cores.toFixed(2);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes in binary units: 1536 → "1.5 KiB", 0 → "0 B". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes)) return DASH;
  let v = Math.abs(bytes);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  const sign = bytes < 0 ? '-' : '';
  return i === 0 ? `${sign}${Math.round(v)} B` : `${sign}${v < 10 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

/** Bytes per second: 2048 → "2.0 KiB/s". */
export function formatByteRate(bps: number | null | undefined): string {
  return bps == null || !Number.isFinite(bps) ? DASH : `${formatBytes(bps)}/s`;
}

/** Requests per second: 0 → "0/s", 3.14159 → "3.1/s", 120.4 → "120/s". */
export function formatPerSec(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return DASH;
  return `${n === 0 ? '0' : n < 10 ? n.toFixed(1) : Math.round(n)}/s`;
}

/** A time of day in UTC, as the CLI prints event times: "23:04:05". */
export function formatClock(at: string | number): string {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? String(at) : d.toISOString().slice(11, 19);
}

/** "2/3" with the phase, as `carte get` shows readiness. */
export function formatReady(ready: number, desired: number): string {
  return `${ready}/${desired}`;
}
