import fs from 'node:fs';

/**
 * Whether a process runs: it exists and is not a zombie (killed, not yet
 * reaped by its parent, which `kill(pid, 0)` would still report as alive).
 */
export function processAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the parenthesised command name: a space, then the state letter.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
