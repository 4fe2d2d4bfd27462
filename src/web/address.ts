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
