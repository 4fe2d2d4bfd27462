// Fault points: a test-only hook to prove that a carte killed at any instant
// leaves nothing `gc` cannot clean. When CARTE_FAULT_POINT names a point, the
// process kills itself with SIGKILL there (no handler, no finally, no flush:
// the same as `kill -9` or a power cut from the machine's side of things).
// Unset (always, outside tests) it costs one environment lookup.

export function faultPoint(name: string): void {
  if (process.env.CARTE_FAULT_POINT === name) process.kill(process.pid, 'SIGKILL');
}
