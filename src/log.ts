// Loggers. The daemon writes structured JSON (one object per line, fields
// such as service, instance, action, ms); the CLI writes short human lines to
// stderr so they never mix with a command's output on stdout.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export function daemonLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { pid: process.pid } });
}

export function cliLogger(level: LevelWithSilent = 'warn'): Logger {
  const stream = pretty({
    sync: true,
    destination: 2,
    colorize: process.stderr.isTTY === true,
    ignore: 'pid,hostname,time',
    hideObject: level !== 'debug' && level !== 'trace',
  });
  return pino({ level, base: undefined }, stream);
}
