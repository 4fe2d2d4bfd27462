// Which CLI commands change something, and how each is written in the audit
// log: the one place the CLI's auditing is decided (main.ts records, after the
// command, what this says). Targets and details come from the command line
// only, and never carry a value given to a secret or a password.
import os from 'node:os';
import path from 'node:path';
import type { AuditEntry } from '../audit/types.js';

/** What an audited command is, before it runs. */
export interface AuditedCommand {
  action: string;
  target: string;
  /** Short, for a command that succeeds (a failure's detail is its error). */
  detail?: string;
}

type Opts = Record<string, unknown>;
type Describe = (args: unknown[], opts: Opts) => AuditedCommand | null;

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);
const flags = (opts: Opts, names: string[]) => names.filter((n) => opts[n] === true).map((n) => `--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
const detailOf = (...parts: (string | undefined)[]) => parts.filter((p) => p).join(', ') || undefined;
const files = (opts: Opts) => list(opts.filename).map((f) => (f === '-' ? 'stdin' : f)).join(' ');
/** The keys of --from-literal key=value and --from-file [key=]file (the keys only). */
const secretKeys = (opts: Opts) => {
  const keys = [
    ...list(opts.fromLiteral).map((l) => l.slice(0, Math.max(0, l.indexOf('=')))),
    ...list(opts.fromFile).map((f) => (f.indexOf('=') > 0 ? f.slice(0, f.indexOf('=')) : path.basename(f))),
  ];
  return keys.length ? `keys ${keys.join(' ')}` : 'key value (stdin)';
};
const service = (name: unknown, action: string, detail?: string): AuditedCommand => ({ action, target: `service/${String(name)}`, detail });

/** Commands by their path ("secret set"); those not here (reads, the daemon itself) are not recorded. */
const AUDITED: Record<string, Describe> = {
  apply: (_a, o) => (o.dryRun ? null : { action: 'apply', target: `-f ${files(o)}`, detail: detailOf(...flags(o, ['prune'])) }),
  delete: ([names], o) => (o.dryRun ? null : {
    action: 'delete',
    target: list(names).filter((n) => n !== 'service').map((n) => `service/${n}`).join(' ') || `-f ${files(o)}`,
    detail: detailOf(...flags(o, ['force'])),
  }),
  rollback: ([name], o) => service(name, 'rollback', o.to === undefined ? undefined : `to revision ${String(o.to)}`),
  stop: ([name]) => service(name, 'stop'),
  start: ([name]) => service(name, 'start'),
  restart: ([name]) => service(name, 'restart'),
  scale: ([name], o) => service(name, 'scale', `replicas ${String(o.replicas)}`),
  sync: () => ({ action: 'sync', target: 'sources' }),
  'state restore': ([target]) => ({ action: 'state.restore', target: `state/${target === undefined ? 'newest good generation' : String(target)}` }),
  'secret set': ([name], o) => ({ action: 'secret.set', target: `secret/${String(name)}`, detail: detailOf(secretKeys(o), ...flags(o, ['force'])) }),
  'secret grant': ([name], o) => ({ action: 'secret.grant', target: `secret/${String(name)}`, detail: `usable by ${list(o.usableBy).join(' ')}` }),
  'secret rm': ([name], o) => ({ action: 'secret.rm', target: `secret/${String(name)}`, detail: detailOf(...flags(o, ['force'])) }),
  'secret rotate-key': (_a, o) => ({ action: 'secret.rotate-key', target: 'secret-key', detail: detailOf(...flags(o, ['keepOld'])) }),
  build: (_a, o) => ({ action: 'build', target: `image/${String(o.tag)}` }),
  rmi: ([refs]) => ({ action: 'rmi', target: list(refs).map((r) => `image/${r}`).join(' ') }),
  'image import': ([file, ref], o) => ({ action: 'image.import', target: `image/${String(ref ?? o.tag ?? `from ${String(file)}`)}` }),
  pull: ([ref]) => ({ action: 'pull', target: `image/${String(ref)}` }),
  push: ([src, dest]) => ({ action: 'push', target: `image/${String(src)}`, detail: `to ${String(dest)}` }),
  // The user, never the password.
  login: ([registry], o) => ({ action: 'login', target: `registry/${String(registry)}`, detail: o.username === undefined ? undefined : `user ${String(o.username)}` }),
  logout: ([registry]) => ({ action: 'logout', target: `registry/${String(registry)}` }),
  run: ([image], o) => ({ action: 'run', target: `image/${String(image)}`, detail: o.name === undefined ? undefined : `instance ${String(o.name)}` }),
  // Never the command run: its arguments may hold anything.
  exec: ([name]) => ({ action: 'exec', target: `instance/${String(name)}` }),
  rm: ([names]) => ({ action: 'rm', target: list(names).map((n) => `instance/${n}`).join(' ') }),
  gc: () => ({ action: 'gc', target: 'home' }),
  'user add': ([name], o) => ({ action: 'user.add', target: `user/${String(name)}`, detail: o.role === undefined ? undefined : `role ${String(o.role)}` }),
  'user rm': ([name]) => ({ action: 'user.rm', target: `user/${String(name)}` }),
  'user passwd': ([name]) => ({ action: 'user.passwd', target: `user/${String(name)}` }),
  'token create': (_a, o) => ({
    action: 'token.create',
    target: `token/${String(o.name)}`,
    detail: detailOf(o.role === undefined ? undefined : `role ${String(o.role)}`, o.expires === undefined ? undefined : `expires in ${String(o.expires)}`),
  }),
  'token rm': ([t]) => ({ action: 'token.rm', target: `token/${String(t)}` }),
};

/** The audit record of a command (its path below `carte`, e.g. ["secret", "set"]), or null for one not audited. */
export function auditedCommand(commandPath: string[], args: unknown[], opts: Opts): AuditedCommand | null {
  return AUDITED[commandPath.join(' ')]?.(args, opts) ?? null;
}

export const auditedCommands = (): string[] => Object.keys(AUDITED);

/**
 * Commands that change nothing (or, the daemon, record their own actions):
 * a test checks that every command is here or in AUDITED, so a new command
 * has to choose.
 */
export const NOT_AUDITED: readonly string[] = [
  'diff', 'get', 'describe', 'history', 'events', 'status', 'alerts', 'top', 'stats', 'state verify',
  'secret list', 'secret get', 'secret seal', 'secret public-key', 'daemon', 'policy show',
  'images', 'image export', 'logs', 'version', 'user list', 'token list', 'audit', 'top', 'stats',
];

/** The local root as the audit log names it: the sudo user when run through sudo, else the login name. */
export function localRoot(env: NodeJS.ProcessEnv = process.env): AuditEntry['who'] {
  const sudo = env.SUDO_USER?.trim();
  if (sudo) return { kind: 'root', name: sudo };
  let name: string;
  try {
    name = os.userInfo().username;
  } catch {
    name = `uid ${process.getuid?.() ?? '?'}`;
  }
  return { kind: 'root', name };
}

/** The entry for a command that ran: ok, or failed with its error (or exit code) as the detail. */
export function cliEntry(cmd: AuditedCommand, outcome: { error?: unknown; exitCode?: number }, at: Date, env: NodeJS.ProcessEnv = process.env): AuditEntry {
  const failed = outcome.error !== undefined || (outcome.exitCode ?? 0) !== 0;
  let detail = cmd.detail;
  if (outcome.error !== undefined) detail = (outcome.error as Error)?.message ?? String(outcome.error);
  else if (failed) detail = `exit code ${outcome.exitCode}`;
  const e: AuditEntry = { at: at.toISOString(), who: localRoot(env), via: 'cli', action: cmd.action, target: cmd.target, result: failed ? 'failed' : 'ok' };
  if (detail) e.detail = detail;
  return e;
}
