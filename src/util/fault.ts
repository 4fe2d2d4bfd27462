// Fault points: a test-only hook to prove that a carte killed at any instant
// leaves nothing `gc` cannot clean. When CARTE_FAULT_POINT names a point, the
// process kills itself with SIGKILL there (no handler, no finally, no flush:
// the same as `kill -9` or a power cut from the machine's side of things).
// Unset (always, outside tests) it costs one environment lookup and one
// lookup in an empty map.
//
// A test running the driver in its own process can also hang a function on a
// point (onFaultPoint), to change the world exactly there: swap a folder for
// a link between a check and a mount, say.

const hooks = new Map<string, () => void>();

/** Tests only: runs `fn` whenever `name` is reached in this process; null takes it off. */
export function onFaultPoint(name: string, fn: (() => void) | null): void {
  if (fn) hooks.set(name, fn);
  else hooks.delete(name);
}

export function faultPoint(name: string): void {
  hooks.get(name)?.();
  if (process.env.CARTE_FAULT_POINT === name) process.kill(process.pid, 'SIGKILL');
}
