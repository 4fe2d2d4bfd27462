// The OCI runtime (runc by default; the path is configurable so crun works
// where the cgroup layout lets it). Containers live under their own --root,
// so carte's containers never mix with others on the machine.
import type { Runner } from './exec.js';

export interface RuntimeState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  created: string;
  annotations: Record<string, string>;
}

export class Runtime {
  constructor(private readonly runner: Runner, readonly path: string, readonly root: string) {}

  private run(args: string[], step: string, id: string, okCodes?: number[]) {
    return this.runner.run(this.path, ['--root', this.root, ...args], { step, resource: id, okCodes });
  }

  async list(): Promise<RuntimeState[]> {
    const r = await this.run(['list', '--format', 'json'], 'list containers in', this.root);
    const parsed = JSON.parse(r.stdout || 'null') as RuntimeState[] | null;
    return (parsed ?? []).map((s) => ({ ...s, annotations: s.annotations ?? {} }));
  }

  /** The container's state, or null when the runtime does not know it. */
  async state(id: string): Promise<RuntimeState | null> {
    const r = await this.run(['state', id], 'read the state of', id, [1]);
    if (r.code !== 0) return null;
    return JSON.parse(r.stdout) as RuntimeState;
  }

  async start(id: string): Promise<void> {
    await this.run(['start', id], 'start', id);
  }

  /** Signals the container's init (or, with all, every process in it). Not running is fine. */
  async kill(id: string, signal: string, all = false): Promise<void> {
    await this.run(['kill', ...(all ? ['--all'] : []), id, signal], `send ${signal} to`, id, [1]);
  }

  /** Deletes the runtime's state (and the container's cgroup), killing it if needed. Missing is fine. */
  async delete(id: string): Promise<void> {
    await this.run(['delete', '--force', id], 'delete runtime state of', id, [1]);
  }

  /** Arguments for `runc exec` (run by the driver with its own stdio wiring). */
  execArgs(id: string, command: string[], opts: { tty: boolean; env: Record<string, string>; cwd?: string; pidFile?: string; cgroups?: string[] }): string[] {
    return [
      '--root', this.root, 'exec', ...(opts.tty ? ['-t'] : []),
      // runc writes the host pid of the exec'd process here once it runs.
      ...(opts.pidFile ? ['--pid-file', opts.pidFile] : []),
      // An existing sub-cgroup of the container's, `[controller:]path` (runc ≥ 1.1).
      ...(opts.cgroups ?? []).flatMap((c) => ['--cgroup', c]),
      ...Object.entries(opts.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      ...(opts.cwd ? ['--cwd', opts.cwd] : []),
      id, ...command,
    ];
  }
}
