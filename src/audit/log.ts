// The audit log: CARTE_HOME/audit.log (0600), one JSON object a line, newest
// last, appended by the CLI and the daemon alike. Each entry is one write(2)
// of one whole line on an O_APPEND descriptor, kept under PIPE_BUF (4 KiB), so
// lines of concurrent writers never interleave and need no lock. Bounded: once
// the file passes maxBytes it becomes audit.log.1 (the one old file kept,
// replacing the previous one) under audit.lock, so two writers do not both
// rotate. A writer that opened the file just before the rename appends to
// audit.log.1: its entry is kept all the same.
//
// A crash mid-write can leave a torn last line: readers skip lines that are
// not whole entries, and the next writer starts on a fresh line.
import fs from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CarteError } from '../errors.js';
import { acquireLock } from '../util/lock.js';
import type { AuditEntry, AuditLog } from './types.js';

export const AUDIT_FILE = 'audit.log';
/** 5 MiB a file, two files: at most about 10 MiB and, at ≤ 1 KiB a typical entry, tens of thousands of entries. */
export const AUDIT_MAX_BYTES = 5 * 1024 * 1024;
/** Under PIPE_BUF: a single append this small is never split or interleaved. */
const LINE_MAX = 4000;
const FIELD_MAX = 200;
const DETAIL_MAX = 500;

export interface FileAuditLogOptions {
  maxBytes?: number;
}

export class FileAuditLog implements AuditLog {
  readonly file: string;
  readonly oldFile: string;
  readonly lockPath: string;
  private readonly maxBytes: number;

  constructor(readonly home: string, opts: FileAuditLogOptions = {}) {
    this.file = path.join(home, AUDIT_FILE);
    this.oldFile = `${this.file}.1`;
    this.lockPath = path.join(home, 'audit.lock');
    this.maxBytes = opts.maxBytes ?? AUDIT_MAX_BYTES;
  }

  async record(e: AuditEntry): Promise<void> {
    const line = encodeEntry(e);
    try {
      mkdirSync(this.home, { recursive: true, mode: 0o700 });
      await this.rotateIfFull();
      const handle = await fs.open(this.file, 'a+', 0o600);
      try {
        // After a crash that tore the last line, start on a line of our own.
        const { size } = await handle.stat();
        let text = line;
        if (size > 0) {
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, size - 1);
          if (last[0] !== 0x0a) text = `\n${line}`;
        }
        await handle.write(text);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (err instanceof CarteError) throw err;
      throw new CarteError('io', `failed to write the audit log ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async rotateIfFull(): Promise<void> {
    const size = async () => (await fs.stat(this.file).catch(() => null))?.size ?? 0;
    if ((await size()) < this.maxBytes) return;
    const lock = await acquireLock(this.lockPath, { timeoutMs: 10_000 });
    try {
      // Another writer may have rotated while we waited.
      if ((await size()) >= this.maxBytes) await fs.rename(this.file, this.oldFile);
    } finally {
      await lock.release();
    }
  }

  /** Newest last; `limit` keeps the newest ones. Lines that are not whole entries (a torn write) are skipped. */
  async list(opts: { limit?: number } = {}): Promise<AuditEntry[]> {
    const entries: AuditEntry[] = [];
    for (const f of [this.oldFile, this.file]) {
      let text: string;
      try {
        text = await fs.readFile(f, 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        if (code === 'EACCES') throw new CarteError('io', `failed to read the audit log ${f}: permission denied (the audit log needs root: run carte as root)`, { cause: e });
        throw new CarteError('io', `failed to read the audit log ${f}: ${(e as Error).message}`, { cause: e });
      }
      for (const line of text.split('\n')) {
        const entry = decodeEntry(line);
        if (entry) entries.push(entry);
      }
    }
    const limit = opts.limit;
    return limit !== undefined && limit >= 0 ? entries.slice(Math.max(0, entries.length - limit)) : entries;
  }
}

/**
 * Makes a detail safe to keep: one line, bounded, with anything shaped like
 * an API token cut out (a caller's error message could quote one). Callers
 * must not pass secret values or passwords; this is the last guard.
 */
export function cleanDetail(detail: string): string {
  const one = detail.replace(/carte_[A-Za-z0-9_-]{8,}/g, 'carte_…').replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return one.length > DETAIL_MAX ? `${one.slice(0, DETAIL_MAX - 1)}…` : one;
}

const clip = (s: string) => (s.length > FIELD_MAX ? `${s.slice(0, FIELD_MAX - 1)}…` : s);

/** The line written for an entry, newline included, always under LINE_MAX bytes. */
export function encodeEntry(e: AuditEntry): string {
  const out: AuditEntry = {
    at: e.at,
    who: { kind: e.who.kind, name: clip(e.who.name) },
    via: e.via,
    action: clip(e.action),
    target: clip(e.target),
    result: e.result,
  };
  if (e.detail !== undefined && e.detail !== '') out.detail = cleanDetail(e.detail);
  let line = JSON.stringify(out);
  // Escaped characters can grow a field six-fold: cut the detail until it fits.
  while (Buffer.byteLength(line) >= LINE_MAX && out.detail && out.detail.length > 1) {
    out.detail = `${out.detail.slice(0, Math.floor(out.detail.length / 2))}…`;
    line = JSON.stringify(out);
  }
  if (Buffer.byteLength(line) >= LINE_MAX) {
    // Only names full of control characters get here: keep short, escaped forms of them.
    const short = (s: string) => (s.length > 40 ? `${s.slice(0, 39)}…` : s);
    delete out.detail;
    out.who = { kind: out.who.kind, name: short(out.who.name) };
    out.action = short(out.action);
    out.target = short(out.target);
    line = JSON.stringify(out);
  }
  return `${line}\n`;
}

const KINDS = ['user', 'token', 'root'];
const VIAS = ['cli', 'dashboard', 'api'];
const RESULTS = ['ok', 'refused', 'failed'];

/** The entry of a line, or null when it is not a whole one. */
export function decodeEntry(line: string): AuditEntry | null {
  if (!line.startsWith('{')) return null;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  const who = o.who as Record<string, unknown> | undefined;
  if (typeof o.at !== 'string' || typeof who?.name !== 'string' || !KINDS.includes(who.kind as string)) return null;
  if (!VIAS.includes(o.via as string) || typeof o.action !== 'string' || typeof o.target !== 'string' || !RESULTS.includes(o.result as string)) return null;
  if (o.detail !== undefined && typeof o.detail !== 'string') return null;
  return o as unknown as AuditEntry;
}
