// The one way the Linux driver runs external programs (runc, CNI plugins,
// ip, ldd): execFile (or, for streaming, spawn) with an argument array,
// never a shell string; each call is logged with its duration, and a failure becomes a DriverError
// that names the step, the resource and what the program printed.
import { execFile, spawn, type ChildProcess, type ExecFileOptions, type StdioOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import type { Logger } from '../../log.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions {
  /** What this call does and to what, for the error message: `runc create`, `login-1`. */
  step: string;
  resource: string;
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Exit codes that are not failures (e.g. "already gone"). */
  okCodes?: number[];
  hint?: string;
}

export class Runner {
  constructor(private readonly log: Logger) {}

  run(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
    const started = performance.now();
    const execOpts: ExecFileOptions = { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' };
    return new Promise((resolve, reject) => {
      const child = execFile(file, [...args], execOpts, (err, stdout, stderr) => {
        const ms = Math.round(performance.now() - started);
        const out = String(stdout);
        const errText = String(stderr);
        const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? (err as unknown as { code: number }).code : -1) : 0;
        if (!err || opts.okCodes?.includes(code)) {
          this.log.debug({ cmd: file, args, ms, code }, 'exec');
          resolve({ stdout: out, stderr: errText, code });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string };
        const cause = e.code === 'ENOENT' ? `${file} is not installed`
          : e.killed ? `${file} timed out after ${opts.timeoutMs ?? 60_000} ms`
            : e.signal ? `${file} was killed by ${e.signal}` : `${file} exited with code ${code}`;
        this.log.debug({ cmd: file, args, ms, code, stderr: errText.trim() }, 'exec failed');
        reject(new DriverError(opts.step, opts.resource, cause, { stderr: errText || out, hint: e.code === 'ENOENT' ? 'run "make setup" as root to install it' : opts.hint, cause: err }));
      });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
  }

  /**
   * Starts a program whose input and output stream while it runs (`runc
   * exec`); the caller owns the child. Logged like run() when it ends.
   */
  spawn(file: string, args: readonly string[], opts: { stdio: StdioOptions }): ChildProcess {
    const started = performance.now();
    const child = spawn(file, [...args], { stdio: opts.stdio });
    child.once('close', (code, signal) => this.log.debug({ cmd: file, args, ms: Math.round(performance.now() - started), code, signal }, 'exec'));
    return child;
  }
}

/**
 * The absolute path of a program, looked up in PATH plus the sbin folders
 * (root's tools live there and a daemon's PATH may lack them); null if absent.
 * conmon insists on an absolute runtime path.
 */
export function findExecutable(name: string): string | null {
  const candidates = name.includes('/') ? [name]
    : [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin']
      .filter(Boolean).map((dir) => path.join(dir, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return path.resolve(c);
    } catch {
      // not here
    }
  }
  return null;
}
