// Structured logs for the metaverse servers: one JSON object per line on
// stdout (carte keeps it; `carte logs` shows it). No dependency, because the
// images carry no node_modules.
import os from 'node:os';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Log {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function makeLog(service: string, level: string = process.env.LOG_LEVEL ?? 'info', write: (line: string) => void = (l) => process.stdout.write(l)): Log {
  const min = RANK[level as Level] ?? RANK.info;
  const instance = os.hostname();
  const emit = (lvl: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (RANK[lvl] < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, service, instance, msg, ...fields })}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
