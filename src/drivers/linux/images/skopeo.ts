// The one door to skopeo, which speaks the OCI distribution protocol for
// carte (token and basic auth, manifest lists, blob retries). Credentials
// reach it only through an --authfile in a private folder made for one call
// and removed after it: never in argv (which `ps` shows) or the environment.
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError } from '../../../errors.js';

export interface SkopeoCredential {
  username: string;
  password: string;
}

export interface SkopeoCall {
  /** skopeo's arguments after the global ones (`copy …`, `inspect …`). */
  args: string[];
  /** What the call does, for messages: `pull 127.0.0.1:5000/team/app:1`. */
  what: string;
  /** Where a private folder for the authfile is made (a tmpfs: /run/carte/<home>). */
  authRoot: string;
  /** The registry and its login, when there is one. */
  auth?: { registry: string; credential: SkopeoCredential } | null;
  timeoutMs: number;
  /** Each line skopeo prints on stdout (its progress), when given; otherwise skopeo is quiet. */
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  /** Written to skopeo's standard input (a password for `login --password-stdin`). */
  stdin?: string;
}

/** skopeo's fatal message without its logrus decoration (`time=… level=fatal msg="…"`). */
export function skopeoMessage(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const last = lines.reverse().find((l) => /level=(fatal|error)/.test(l)) ?? lines[0] ?? '';
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(last);
  const text = m ? m[1]!.replace(/\\"/g, '"').replace(/\\\\/g, '\\') : last.trim();
  // The reference is already in carte's message; skopeo's wrapper around the cause says nothing more.
  const cause = text.replace(/^(?:Error parsing image name|Error initializing source|initializing source) "docker:\/\/[^"]*": /, '');
  return cause || 'skopeo failed without a message';
}

/** Runs skopeo; resolves with its stdout, rejects with a CarteError carrying skopeo's own message. */
export async function runSkopeo(call: SkopeoCall): Promise<string> {
  await fsp.mkdir(call.authRoot, { recursive: true, mode: 0o700 });
  // Named by this process: a carte killed mid-call (SIGTERM on a hung registry) leaves it behind,
  // and sweepAuthFolders() removes it once this pid is gone.
  const dir = await fsp.mkdtemp(path.join(call.authRoot, `auth-${process.pid}-`));
  try {
    await fsp.chmod(dir, 0o700);
    const authfile = path.join(dir, 'auth.json');
    // Always an authfile of carte's own: skopeo must not pick up root's docker or podman logins.
    const auths = call.auth ? { [call.auth.registry]: { auth: Buffer.from(`${call.auth.credential.username}:${call.auth.credential.password}`).toString('base64') } } : {};
    await fsp.writeFile(authfile, JSON.stringify({ auths }), { mode: 0o600 });
    const seconds = Math.max(1, Math.ceil(call.timeoutMs / 1000));
    const args = ['--command-timeout', `${seconds}s`, ...call.args.slice(0, 1), '--authfile', authfile, ...call.args.slice(1)];
    return await spawnSkopeo(args, call);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

function spawnSkopeo(args: string[], call: SkopeoCall): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('skopeo', args, { stdio: [call.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: { ...process.env, HOME: '/nonexistent' } });
    if (call.stdin !== undefined) child.stdin!.end(call.stdin);
    let stdout = '';
    let stderr = '';
    let partial = '';
    let killedBy: string | null = null;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      if (!call.onLine) {
        stdout += chunk;
        return;
      }
      stdout += chunk;
      partial += chunk;
      const lines = partial.split(/\r?\n|\r/);
      partial = lines.pop()!;
      for (const l of lines) if (l.trim()) call.onLine(l);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < 64 * 1024) stderr += chunk;
    });
    // skopeo's own --command-timeout should end it; this is the last word, so nothing ever hangs.
    const timer = setTimeout(() => {
      killedBy = `it did not finish within ${Math.round(call.timeoutMs / 1000)}s`;
      child.kill('SIGKILL');
    }, call.timeoutMs + 5000);
    const onAbort = () => {
      killedBy = 'it was cancelled';
      child.kill('SIGKILL');
    };
    call.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new CarteError('registry', e.code === 'ENOENT' ? `${call.what}: skopeo is not installed (run "make setup" as root)` : `${call.what}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', onAbort);
      if (partial.trim()) call.onLine?.(partial);
      if (code === 0 && !killedBy) resolve(stdout);
      else if (killedBy) reject(new CarteError('registry', `${call.what}: ${killedBy}`));
      else {
        const message = skopeoMessage(stderr);
        reject(new CarteError('registry', `${call.what}: ${/context deadline exceeded/.test(message) ? `the registry did not answer within ${Math.round(call.timeoutMs / 1000)}s (${message})` : message}`));
      }
    });
  });
}

/** Removes the authfile folders of carte processes that are gone (killed during a call); returns what it removed. */
export async function sweepAuthFolders(authRoot: string, alive: (pid: number) => boolean): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await fsp.readdir(authRoot).catch(() => [] as string[])) {
    const m = /^auth-(\d+)-/.exec(name);
    const full = path.join(authRoot, name);
    // An older carte named them without its pid: those are kept an hour (a call's longest timeout is 10 min).
    const stale = m ? !alive(Number(m[1])) : name.startsWith('auth-') && Date.now() - ((await fsp.stat(full).catch(() => null))?.mtimeMs ?? Date.now()) > 3_600_000;
    if (!stale) continue;
    await fsp.rm(full, { recursive: true, force: true });
    removed.push(`registry login file ${full}`);
  }
  return removed;
}
