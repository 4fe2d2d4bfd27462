// Where the dashboard listens: `--http ADDR:PORT`, `--http off`, or $CARTE_HTTP.
import { UsageError } from '../errors.js';

export const DEFAULT_HTTP = '127.0.0.1:7070';

export interface HttpAddress {
  host: string;
  port: number;
}

/** The address to listen on, or null for `off`. Pure. `flag` names where the text came from, for the error. */
export function parseHttpAddress(text: string, flag = '--http'): HttpAddress | null {
  const t = text.trim();
  if (t === 'off') return null;
  // [::1]:7070 for IPv6, else HOST:PORT.
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t) ?? /^([^:\s[\]]+):(\d+)$/.exec(t);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`daemon: ${flag} takes ADDR:PORT (e.g. 127.0.0.1:7070, 0.0.0.0:8080, [::1]:7070) or off, got "${text}"`);
  }
  return { host: m[1]!, port };
}

/** Which text to parse: the flag, else $CARTE_HTTP, else the default. */
export function httpSetting(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): { text: string; from: string } {
  if (flag !== undefined) return { text: flag, from: '--http' };
  if (env.CARTE_HTTP) return { text: env.CARTE_HTTP, from: 'CARTE_HTTP' };
  return { text: DEFAULT_HTTP, from: '--http' };
}

/** Whether a host (an address, or a name) is this machine's loopback: 127.0.0.0/8, ::1, localhost. Pure. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Whether a request's Host header may be answered. On a loopback listener
 * only a loopback address or localhost: a page of another site whose name
 * was rebound to 127.0.0.1 (DNS rebinding) sends its own name and is
 * refused. Any port: an SSH tunnel may bring the listener to another local
 * port (`ssh -L 8080:127.0.0.1:7070`), and the name is what rebinding
 * cannot fake. Other listeners take any Host. Pure.
 */
export function hostAllowed(header: string | undefined, listener: HttpAddress): boolean {
  if (!isLoopbackHost(listener.host)) return true;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec((header ?? '').trim());
  if (!m) return false;
  return (m[2] === undefined || Number(m[2]) <= 65535) && isLoopbackHost(m[1]!);
}
