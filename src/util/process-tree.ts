// Processes as /proc shows them: parent, session, state. For ending a
// command together with everything it started.
import fs from 'node:fs';

export interface ProcEntry {
  pid: number;
  ppid: number;
  sid: number;
  /** The state letter (R, S, D, Z, ...). */
  state: string;
}

/** One process from /proc/PID/stat; null when it is gone. */
export function readProc(pid: number): ProcEntry | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name is in parentheses and may itself hold spaces and ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name: state, ppid, pgrp, session (proc(5)).
  return { pid, state: f[0]!, ppid: Number(f[1]), sid: Number(f[3]) };
}

export function allProcs(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const p = readProc(Number(d));
    if (p) out.push(p);
  }
  return out;
}

/**
 * The live (not zombie) processes of `leader`'s session, and its
 * descendants (which may have left the session), without the leader itself;
 * deepest first, so a parent that is still alive can reap its children.
 * Only ask for descendants while the leader's pid cannot have been reused
 * (its parent has not reaped it); session members are safe to match at any
 * time: the kernel keeps a pid number reserved while it names a session.
 */
export function sessionMembers(leader: number, opts: { descendants: boolean } = { descendants: true }, procs: ProcEntry[] = allProcs()): number[] {
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const depth = (p: ProcEntry): number | null => {
    // Walk the parent chain up to the leader; bounded against cycles made by pid reuse mid-scan.
    let cur: ProcEntry | undefined = p;
    for (let d = 0; cur && d < 4096; d++) {
      if (cur.ppid === leader) return d + 1;
      if (cur.ppid <= 1) return null;
      cur = byPid.get(cur.ppid);
    }
    return null;
  };
  const members: Array<{ pid: number; depth: number }> = [];
  for (const p of procs) {
    if (p.pid === leader || p.state === 'Z') continue;
    const d = opts.descendants ? depth(p) : null;
    if (d !== null) members.push({ pid: p.pid, depth: d });
    else if (p.sid === leader) members.push({ pid: p.pid, depth: 0 }); // orphaned: reparented, still in the session
  }
  return members.sort((a, b) => b.depth - a.depth).map((m) => m.pid);
}
