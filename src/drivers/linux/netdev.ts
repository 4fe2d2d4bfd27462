// An instance's network counters: /proc/<pid>/net/dev of its init process
// shows the interfaces of the network namespace that process is in (the
// instance's own), cumulative since each interface was made. Loopback is
// left out: it is traffic of the instance with itself.
import fs from 'node:fs';
import type { NetCounters } from '../driver.js';

/** Sums receive/transmit bytes and packets of every interface but lo. */
export function parseNetDev(text: string): NetCounters {
  const out: NetCounters = { rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0 };
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue; // the two header lines
    const iface = line.slice(0, colon).trim();
    if (iface === 'lo' || iface.includes('|')) continue;
    // Receive: bytes packets errs drop fifo frame compressed multicast; then Transmit: bytes packets ...
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 10) continue;
    out.rxBytes += f[0]!;
    out.rxPackets += f[1]!;
    out.txBytes += f[8]!;
    out.txPackets += f[9]!;
  }
  return out;
}

/** The counters of the namespace `pid` is in; null when the process is gone. */
export function readNetDev(pid: number, procRoot = '/proc'): NetCounters | null {
  try {
    // Synchronous: a small file the kernel makes on read (see cgroups.ts readText).
    return parseNetDev(fs.readFileSync(`${procRoot}/${pid}/net/dev`, 'utf8'));
  } catch {
    return null;
  }
}
