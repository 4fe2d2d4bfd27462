// The per-instance monitor: conmon (podman's, Debian package `conmon`). It
// runs `runc create`, then detaches (its parent becomes PID 1), holds the
// container's stdout/stderr and writes them to a size-capped log in the k8s
// file format, and writes the exit code (and an `oom` marker) when the
// container ends, so a container outlives carte and its end is still known.
// It costs about 2 MB of RSS per instance (measured in bench/driver).
//
// conmon reports the container's pid on the pipe named by _OCI_SYNCPIPE once
// `runc create` is done: `{"data": PID}`, or `{"data": -1, "message": ...}`.
// Without --socket-dir-path it dies silently ("Failed to create symlink for
// notify socket"), so every instance gets its own socket folder.
import { spawn } from 'node:child_process';
import { DriverError } from '../../errors.js';

export interface MonitorOptions {
  conmon: string;
  runtime: string;
  runtimeRoot: string;
  id: string;
  bundle: string;
  pidFile: string;
  conmonPidFile: string;
  exitDir: string;
  persistDir: string;
  socketDir: string;
  logPath: string;
  logMaxBytes: number;
}

/** Starts conmon, which creates the container; resolves to the container's pid. */
export function startMonitor(o: MonitorOptions, timeoutMs = 30_000): Promise<number> {
  const args = [
    '--api-version', '1', '-c', o.id, '-u', o.id, '-n', o.id,
    '-r', o.runtime, '--runtime-arg', '--root', '--runtime-arg', o.runtimeRoot,
    '-b', o.bundle, '-p', o.pidFile, '--conmon-pidfile', o.conmonPidFile,
    '--exit-dir', o.exitDir, '-0', o.persistDir, '--socket-dir-path', o.socketDir,
    '-l', `k8s-file:${o.logPath}`, '--log-size-max', String(o.logMaxBytes),
  ];
  return new Promise((resolve, reject) => {
    // cwd: conmon also writes an `oom` file into its working folder when the
    // container is OOM-killed (podman runs it in the bundle); outside it, that file landed in carte's own cwd.
    const child = spawn(o.conmon, args, { cwd: o.bundle, stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { ...process.env, _OCI_SYNCPIPE: '3' } });
    const sync = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    let reply = '';
    let stderr = '';
    let done = false;
    const finish = (err: Error | null, pid?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // conmon keeps its end open for the container's life: stop reading so we do not wait on it.
      sync.destroy();
      child.stderr?.destroy();
      if (err) reject(err);
      else resolve(pid!);
    };
    const timer = setTimeout(() => finish(new DriverError('create (conmon)', o.id, `no answer from conmon within ${timeoutMs} ms`, { stderr })), timeoutMs);
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => finish(new DriverError('start the monitor of', o.id, `${o.conmon}: ${e.message}`, { hint: 'run "make setup" as root to install conmon' })));
    sync.on('data', (d: Buffer) => {
      reply += d.toString();
      const line = reply.split('\n').find((l) => l.trim().startsWith('{'));
      if (!line) return;
      try {
        const msg = JSON.parse(line) as { data: number; message?: string };
        if (msg.data > 0) finish(null, msg.data);
        else finish(new DriverError('create (runc)', o.id, msg.message?.trim() || 'the runtime failed', { stderr }));
      } catch {
        // Partial line: wait for more.
      }
    });
    sync.on('end', () => finish(new DriverError('create (conmon)', o.id, 'conmon exited without creating the container', { stderr })));
  });
}
